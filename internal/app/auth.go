package app

import (
	"errors"
	"sync/atomic"

	"github.com/keyfort/keyfort/internal/credentials"
	"github.com/keyfort/keyfort/internal/identity"
	"github.com/keyfort/keyfort/internal/sensitive"
)

// liveCredentials is the credentials file in force in strict auth; Reload
// replaces it atomically. It implements sigv4.Credentials.
type liveCredentials struct {
	store atomic.Pointer[credentials.Store]
}

// Credential implements sigv4.Credentials with the file in force.
func (l *liveCredentials) Credential(accessKeyID string) (secret, sessionToken sensitive.String, caller *identity.Caller, ok bool) {
	return l.store.Load().Credential(accessKeyID)
}

// Reload reads the credentials file of strict auth and the TLS certificate,
// key and client CAs again (as SIGHUP asks). A good file replaces the one in
// force atomically: a request verified (or a connection made) before keeps
// what it got, every later one sees the new file. A bad file is logged at
// error level with its one-line message and returned, and the file in force
// stays. In development auth without TLS there is nothing to reload and
// Reload returns nil.
func (a *App) Reload() error {
	if a.creds == nil && a.tls == nil {
		a.log.Info("reload: nothing to reload in dev auth without TLS")
		return nil
	}
	var errs []error
	if a.creds != nil {
		if err := a.reloadCredentials(); err != nil {
			errs = append(errs, err)
		}
	}
	if a.tls != nil {
		if err := a.tls.reload(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// reloadCredentials reads the credentials file of strict auth again.
func (a *App) reloadCredentials() error {
	s, err := credentials.Load(a.cfg.Credentials)
	if err != nil {
		a.log.Error("credentials not reloaded; the previous ones stay in force",
			"file", a.cfg.Credentials, "error", err.Error())
		return err
	}
	a.creds.store.Store(s)
	a.log.Info("credentials reloaded", "file", a.cfg.Credentials,
		"principals", s.Principals(), "access_keys", s.Keys())
	return nil
}
