package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/rs/zerolog"
)

// pprofEnv names the environment variable that switches on the profiling
// endpoint: SENSORGATE_PPROF=127.0.0.1:6060 serves net/http/pprof there.
// It is an environment variable, not a config key, because profiling is a
// developer's tool (the end-to-end benchmark uses it) and must not end up
// in a production config by accident.
const pprofEnv = "SENSORGATE_PPROF"

// servePprof starts the opt-in profiling endpoint and returns the function
// that stops it. Without the variable it does nothing. Only a loopback
// address is accepted: profiles expose memory contents and command lines,
// and the endpoint has no authentication. A bad address or a busy port is
// logged, not fatal, so a typo never keeps the daemon from running.
func servePprof(log zerolog.Logger) (stop func()) {
	addr := os.Getenv(pprofEnv)
	if addr == "" {
		return func() {}
	}
	if err := checkLoopback(addr); err != nil {
		log.Error().Err(err).Msg("profiling endpoint not started")
		return func() {}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Error().Err(fmt.Errorf("%s: listen on %s: %w", pprofEnv, addr, err)).Msg("profiling endpoint not started")
		return func() {}
	}
	// A mux of its own: importing net/http/pprof also registers on
	// http.DefaultServeMux, which nothing here serves.
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile answers only after its ?seconds=.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Msg("profiling endpoint stopped")
		}
	}()
	log.Warn().Str("addr", l.Addr().String()).Msgf("profiling endpoint on (%s): for development only", pprofEnv)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = srv.Close() // ends a profile still being recorded
		<-done
	}
}

// checkLoopback accepts host:port where host is a loopback IP or
// "localhost".
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s=%q: want 127.0.0.1:PORT: %w", pprofEnv, addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%s=%q: only a loopback address (127.0.0.1:PORT) is allowed: the endpoint has no authentication", pprofEnv, addr)
	}
	return nil
}
