// Command bulwark is the Bulwark recursive resolver daemon. It reads the
// flags and the config file, wires the resolver to the real network and to
// the client listener, logs a start-up summary and serves until SIGINT or
// SIGTERM, then shuts down gracefully.
//
// It holds no DNS logic of its own: resolution is in resolver/, the client
// sockets in resolver/listener, DNSSEC in validate/, the cache in cache/.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/bulwark-dns/bulwark/resolver/listener"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// run is the daemon until ctx ends; it returns the exit code: 0 after a
// clean shutdown, 1 when it cannot start or stop cleanly, 2 for bad flags.
func run(ctx context.Context, args []string, stderr io.Writer) int {
	cl, err := parseCommandLine(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bulwark: %v\n", err)
		return 2
	}
	s, err := loadSettings(cl)
	if err != nil {
		fmt.Fprintf(stderr, "bulwark: %v\n", err)
		return 1
	}
	log, err := newLogger(s.logLevel, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "bulwark: %v\n", err)
		return 1
	}
	defer log.Sync()
	if p, floor, set := s.gcTuning(os.Getenv); set {
		defer startGCFloor(p, uint64(floor))()
	}
	if cl.cpuProfile != "" {
		stopProfile, err := startCPUProfile(cl.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "bulwark: %v\n", err)
			return 1
		}
		defer stopProfile()
	}
	if err := serve(ctx, &s, log); err != nil {
		fmt.Fprintf(stderr, "bulwark: %v\n", err)
		return 1
	}
	return 0
}

// startCPUProfile profiles the whole process into path until the returned
// function runs.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpuprofile %s: %w", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// loadSettings lays the config file over the defaults, then the flags.
func loadSettings(cl *commandLine) (settings, error) {
	s := defaultSettings()
	if cl.config != "" {
		f, err := os.Open(cl.config)
		if err != nil {
			return s, fmt.Errorf("config: %w", err)
		}
		defer f.Close()
		if err := parseConfig(f, cl.config, &s); err != nil {
			return s, err
		}
	}
	cl.apply(&s)
	return s, nil
}

// serve runs the listener until ctx ends.
func serve(ctx context.Context, s *settings, log *zap.Logger) error {
	// Before the resolver and its caches take any heap.
	hugePages := heapHugePages(s, os.ReadFile)
	clock := new(wallClock)
	w, err := newResolver(s, log, clock)
	if err != nil {
		return err
	}
	lcfg := s.listenerConfig()
	lcfg.Logger = log.Named("listener")
	lcfg.Answers = s.answerCache()
	lcfg.Clock = clock
	srv := listener.New(lcfg, w.res)
	if err := listenAll(ctx, srv, s, log); err != nil {
		srv.Shutdown(context.Background())
		return err
	}
	logSummary(log, s, srv, hugePages)
	<-ctx.Done()
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	st := srv.Stats()
	log.Info("stopped", append([]zap.Field{zap.Uint64("queries", st.Queries), zap.Uint64("dropped", st.Dropped),
		zap.Uint64("truncated", st.Truncated), zap.Any("rcodes", st.Rcodes)}, w.stats()...)...)
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
