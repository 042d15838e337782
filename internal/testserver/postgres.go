package testserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresAdminDSN is the machine's PostgreSQL the tests use (trust auth on
// loopback, as scripts/test.sh sets it up); SG_TEST_PG_DSN overrides it.
func PostgresAdminDSN() string {
	if dsn := os.Getenv("SG_TEST_PG_DSN"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// PostgresDB creates a database of its own for the test (sg_test_<random>)
// and returns its DSN; at cleanup it ends the connections left to it and
// drops it. An unreachable server fails the test: the shared registry is
// only proved against a real PostgreSQL.
func PostgresDB(t TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.ParseConfig(PostgresAdminDSN())
	if err != nil {
		t.Fatalf("testserver: SG_TEST_PG_DSN: %v", err)
	}
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		t.Fatalf("testserver: PostgreSQL at %s:%d is not reachable (%v): start it (scripts/test.sh does: pg_ctlcluster --skip-systemctl-redirect <version> main start) or set SG_TEST_PG_DSN", admin.Host, admin.Port, err)
	}
	defer conn.Close(context.Background())
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testserver: %v", err)
	}
	name := "sg_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("testserver: create database %s: %v", name, err)
	}
	t.Cleanup(func() { dropPostgresDB(t, admin, name) })
	u, err := url.Parse(PostgresAdminDSN())
	if err != nil || u.Scheme == "" {
		t.Fatalf("testserver: SG_TEST_PG_DSN must be a postgres:// URL")
	}
	u.Path = "/" + name
	return u.String()
}

func dropPostgresDB(t TB, admin *pgx.ConnConfig, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		t.Fatalf("testserver: drop database %s: %v", name, err)
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name); err != nil {
		t.Fatalf("testserver: end connections to %s: %v", name, err)
	}
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		t.Fatalf("testserver: drop database %s: %v", name, err)
	}
}

// PostgresAdminExec runs one statement as the server's administrator: a
// test that takes its database away (ALTER DATABASE … ALLOW_CONNECTIONS
// false, pg_terminate_backend) and gives it back.
func PostgresAdminExec(t TB, stmt string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, PostgresAdminDSN())
	if err != nil {
		t.Fatalf("testserver: connect as administrator: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatalf("testserver: %s: %v", stmt, err)
	}
}
