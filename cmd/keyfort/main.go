// Command keyfort serves the AWS KMS and AWS Secrets Manager APIs.
//
//	keyfort serve [flags]   run the server (see keyfort serve -h)
//	keyfort rootkey rotate  re-seal everything under a new root key
//	keyfort clock advance DURATION --endpoint URL
//	                        move a dev server's clock forward (8d, 36h)
//	keyfort version         print the version
//	keyfort help            print this help
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/keyfort/keyfort/internal/app"
	"github.com/keyfort/keyfort/internal/config"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

const usage = `keyfort serves the AWS KMS and AWS Secrets Manager APIs.

Usage:
  keyfort serve [flags]   run the server (keyfort serve -h lists the flags)
  keyfort rootkey rotate [flags]
                          re-seal every stored key under a new root key
                          (stop the server first; keyfort rootkey rotate -h)
  keyfort clock advance DURATION [--endpoint URL]
                          move the clock of a running dev server forward
                          (8d, 36h, 1d12h) and run the work that fell due
  keyfort clock show [--endpoint URL]
                          print the server's time and its offset
  keyfort version         print the version
  keyfort help            print this help

Settings come from flags, then KEYFORT_* environment variables, then the
YAML file given by --config, then defaults. With --auth strict, requests
must be signed with an access key of the --credentials file. With
--tls-cert/--tls-key (or --tls-self-signed) the server speaks HTTPS only.
SIGHUP reloads the credentials file and the TLS certificate, key and
client CAs.
`

func main() {
	os.Exit(Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv))
}

// Main runs the keyfort command with args (without the program name) and
// returns the exit status: 0 on success, 1 when the server fails, 2 for
// bad usage or configuration.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr, lookup)
	case "rootkey":
		if len(args) < 2 || args[1] != "rotate" {
			fmt.Fprintln(stderr, "keyfort: usage: keyfort rootkey rotate [flags]")
			return 2
		}
		return rotate(ctx, args[2:], stdout, stderr, lookup)
	case "clock":
		return clockCmd(ctx, args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "keyfort", version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "keyfort: unknown command %q (try keyfort help)\n", args[0])
		return 2
	}
}

func serve(ctx context.Context, args []string, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("keyfort serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg, err := config.Load(fs, args, lookup)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintln(stderr, "keyfort:", err)
		} // flag errors were already printed by fs, with the usage
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "keyfort:", err)
		return 2
	}
	log := app.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if _, set := lookup("GOMEMLIMIT"); !set && cfg.MemoryLimit > 0 {
		debug.SetMemoryLimit(cfg.MemoryLimit)
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGHUP reloads the credentials file (strict auth) and the TLS files.
	// Subscribed before start-up so that an early SIGHUP does not end the
	// process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	a, err := app.New(ctx, cfg, app.Options{Logger: log, LookupEnv: lookup})
	if err != nil {
		fmt.Fprintln(stderr, "keyfort:", err)
		return 1
	}
	go func() {
		for {
			select {
			case <-hup:
				_ = a.Reload() // logs its outcome; a bad file leaves the old one in force
			case <-ctx.Done():
				return
			}
		}
	}()
	if err := a.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "keyfort:", err)
		return 1
	}
	return 0
}

// rotate runs `keyfort rootkey rotate`: the same settings as serve (to find
// the data, the store and the current root key), plus --new-root-key-file.
func rotate(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	fs := flag.NewFlagSet("keyfort rootkey rotate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var newKey string
	fs.StringVar(&newKey, "new-root-key-file", "", "the new root key (default: generate one into <data>/root.key.next)")
	cfg, err := config.Load(fs, args, lookup)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintln(stderr, "keyfort:", err)
		}
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "keyfort:", err)
		return 2
	}
	log := app.NewLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := app.RotateRootKey(ctx, cfg, app.RotateOptions{NewRootKeyFile: newKey, Logger: log, LookupEnv: lookup})
	if err != nil {
		fmt.Fprintln(stderr, "keyfort:", err)
		fmt.Fprintln(stderr, "keyfort: nothing is lost; run keyfort rootkey rotate again to finish")
		return 1
	}
	fmt.Fprintf(stdout, "re-sealed %d records from root key %x to %x\n", res.Resealed, res.OldID, res.NewID)
	if res.Installed {
		fmt.Fprintf(stdout, "the new root key is installed; the old one is kept in %s until you remove it\n", res.OldKeyPath)
	} else {
		fmt.Fprintf(stdout, "configure the new root key from %s (--root-key-file or KEYFORT_ROOT_KEY) before starting the server\n", res.NewKeyPath)
	}
	return 0
}
