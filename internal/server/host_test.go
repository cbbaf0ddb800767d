package server

import (
	"net"
	"testing"
)

// TestAllowedHostMemory checks allowedHost, which remembers the last Host it
// allowed, against checkHost (its answer without memory, the check as it
// was), over every pair of Hosts in a row and in both orders, before and
// after Serve adds a listen address.
func TestAllowedHostMemory(t *testing.T) {
	hosts := []string{
		"localhost", "localhost:4599", "LocalHost:1", "127.0.0.1", "127.0.0.1:4599", "127.1.2.3:80",
		"[::1]", "[::1]:4599", "::1", "[::ffff:127.0.0.1]:1", "192.0.2.7", "192.0.2.7:4599", "[::ffff:192.0.2.7]:80",
		"192.0.2.8:4599", "evil.example", "evil.example:4599", "localhost.evil.example", "127.0.0.1.nip.io",
		"[::2]", "", ":4599", "[", "[]", "fe80::1%eth0", "127.0.0.1:", "127.0.0.01:80", "0.0.0.0",
	}
	s := &Server{}
	check := func(h string) {
		t.Helper()
		if got, want := s.allowedHost(h), s.checkHost(h); got != want {
			t.Errorf("allowedHost(%q) = %t after the Host %q, want %t", h, got, *s.lastHost.Load(), want)
		}
	}
	for _, listen := range []string{"", "192.0.2.7", "0.0.0.0"} {
		if listen != "" {
			s.listenIPs = append(s.listenIPs, net.ParseIP(listen))
		}
		for _, a := range hosts {
			for _, b := range hosts {
				check(a)
				check(b)
				check(a)
				check(b)
			}
		}
	}
}

func BenchmarkAllowedHost(b *testing.B) {
	s := &Server{}
	b.ReportAllocs()
	for b.Loop() {
		if !s.allowedHost("127.0.0.1:4566") {
			b.Fatal("refused")
		}
	}
}

func BenchmarkCheckHost(b *testing.B) {
	s := &Server{}
	b.ReportAllocs()
	for b.Loop() {
		if !s.checkHost("127.0.0.1:4566") {
			b.Fatal("refused")
		}
	}
}
