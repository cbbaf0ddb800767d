package app

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/keyfort/keyfort/internal/config"
)

func TestClockRefusal(t *testing.T) {
	tcp := func(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 4599} }
	for _, c := range []struct {
		name string
		auth string
		addr net.Addr
		want string // "" allowed
	}{
		{"dev on 127.0.0.1", config.AuthDev, tcp("127.0.0.1"), ""},
		{"dev on 127.0.0.2", config.AuthDev, tcp("127.0.0.2"), ""},
		{"dev on ::1", config.AuthDev, tcp("::1"), ""},
		{"dev on 0.0.0.0", config.AuthDev, tcp("0.0.0.0"), "loopback"},
		{"dev on ::", config.AuthDev, tcp("::"), "loopback"},
		{"dev on a LAN address", config.AuthDev, tcp("192.168.1.10"), "loopback"},
		{"dev on a unix socket", config.AuthDev, &net.UnixAddr{Name: "/tmp/k.sock", Net: "unix"}, "loopback"},
		{"dev not listening", config.AuthDev, nil, "not listening"},
		{"strict on loopback", config.AuthStrict, tcp("127.0.0.1"), "strict"},
		{"strict on 0.0.0.0", config.AuthStrict, tcp("0.0.0.0"), "strict"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := clockRefusal(c.auth, c.addr)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("clockRefusal = %v, want allowed", err)
			case c.want != "" && (err == nil || err.Status != http.StatusForbidden || !strings.Contains(err.Msg, c.want)):
				t.Fatalf("clockRefusal = %v, want 403 naming %q", err, c.want)
			}
		})
	}
}
