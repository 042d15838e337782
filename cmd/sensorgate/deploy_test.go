package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"gopkg.in/yaml.v3"

	"github.com/sensorgate/sensorgate/config"
	"github.com/sensorgate/sensorgate/internal/testserver"
)

// Docker cannot run here, so the compose setup is checked through what
// its services read: the compose file itself, sensorgate's config and
// Mosquitto's config, the last run by a real Mosquitto.

// TestComposePublishesAPIOnLocalhost: the compose file publishes the API
// on the host's loopback only, and gives Mosquitto a password file
// written from the environment, at the path its config reads.
func TestComposePublishesAPIOnLocalhost(t *testing.T) {
	b, err := os.ReadFile("../../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Ports       []string          `yaml:"ports"`
			Entrypoint  []string          `yaml:"entrypoint"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	sg := compose.Services["sensorgate"]
	if len(sg.Ports) != 1 || !strings.HasPrefix(sg.Ports[0], "127.0.0.1:") {
		t.Errorf("sensorgate publishes %v, want only 127.0.0.1:…", sg.Ports)
	}
	mq := compose.Services["mosquitto"]
	entry := strings.Join(mq.Entrypoint, " ")
	if !strings.Contains(entry, "mosquitto_passwd -b /mosquitto/data/passwd") || mq.Environment["MQTT_PASSWORD"] == "" {
		t.Errorf("mosquitto does not write its password file from MQTT_PASSWORD: %q %v", entry, mq.Environment)
	}
	conf, err := os.ReadFile("../../deploy/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "password_file /mosquitto/data/passwd") || !strings.Contains(string(conf), "allow_anonymous false") {
		t.Errorf("deploy/mosquitto.conf does not require the password file the compose file writes")
	}
}

// TestDeployConfigs: deploy/sensorgate.yaml validates with the compose
// file's variables, and a real Mosquitto run with deploy/mosquitto.conf
// (paths and port moved to the test's) refuses anonymous clients and
// accepts the user the compose file creates.
func TestDeployConfigs(t *testing.T) {
	for k, v := range map[string]string{"INFLUX_TOKEN": "t0ken", "MQTT_USER": "sensorgate", "MQTT_PASSWORD": "pw-from-env"} {
		t.Setenv(k, v)
	}
	cfg, err := config.Load("../../deploy/sensorgate.yaml")
	if err != nil {
		t.Fatalf("deploy/sensorgate.yaml: %v", err)
	}
	if cfg.HTTP.Listen != "0.0.0.0:8080" || cfg.Sources[0].MQTT.Username != "sensorgate" || cfg.Sources[0].MQTT.Password != "pw-from-env" {
		t.Fatalf("deploy config: listen %q, user %q", cfg.HTTP.Listen, cfg.Sources[0].MQTT.Username)
	}

	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, nil, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mosquitto_passwd", "-b", passwd, "sensorgate", "pw-from-env").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v\n%s", err, out)
	}
	conf, err := os.ReadFile("../../deploy/mosquitto.conf")
	if err != nil {
		t.Fatal(err)
	}
	port := testserver.FreePort(t)
	c := strings.ReplaceAll(string(conf), "/mosquitto/data/", dir+"/")
	c = strings.Replace(c, "listener 1883", fmt.Sprintf("listener %d 127.0.0.1", port), 1)
	if os.Geteuid() == 0 {
		c += "user root\n"
	}
	confPath := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin = "/usr/sbin/mosquitto"
	}
	cmd := exec.Command(bin, "-c", confPath)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if err := testserver.WaitListening(port, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	connect := func(user, password string) error {
		o := paho.NewClientOptions().AddBroker("tcp://127.0.0.1:" + strconv.Itoa(port)).SetClientID("deploy-" + user).
			SetConnectRetry(false).SetAutoReconnect(false)
		if user != "" {
			o.SetUsername(user).SetPassword(password)
		}
		cl := paho.NewClient(o)
		tok := cl.Connect()
		if !tok.WaitTimeout(10 * time.Second) {
			return fmt.Errorf("connect timed out")
		}
		if tok.Error() == nil {
			cl.Disconnect(0)
		}
		return tok.Error()
	}
	if err := connect("", ""); err == nil {
		t.Error("an anonymous client connected")
	}
	if err := connect("sensorgate", "wrong"); err == nil {
		t.Error("a wrong password connected")
	}
	if err := connect("sensorgate", "pw-from-env"); err != nil {
		t.Errorf("the compose file's user: %v", err)
	}
}
