// Command bulwark-replay plays Unbound and Deckard replay scenarios (.rpl,
// .crpl) against a Bulwark resolver and prints one line per scenario:
//
//	go run ./cmd/bulwark-replay [-v] [-run REGEXP] [-timeout D] PATH...
//
// Each PATH is a file or a directory searched recursively. The dialect of
// a file is that of its nearest parent directory named unbound or deckard.
// The last line is "N passed, N failed, N skipped"; the exit status is 0
// only when none failed. It holds no logic of its own: parsing, playing
// and judging live in resolver/replay.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"time"

	"go.uber.org/zap"

	"github.com/bulwark-dns/bulwark/resolver/replay"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process: it returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	fl := flag.NewFlagSet("bulwark-replay", flag.ContinueOnError)
	fl.SetOutput(stderr)
	verbose := fl.Bool("v", false, "print each scenario's time, the upstream queries of failed ones, and the resolver's debug log")
	pattern := fl.String("run", "", "play only the scenarios whose path matches this regular expression")
	timeout := fl.Duration("timeout", 10*time.Second, "real-time bound of one scenario")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: bulwark-replay [-v] [-run REGEXP] PATH...")
		return 2
	}
	var filter *regexp.Regexp
	if *pattern != "" {
		var err error
		if filter, err = regexp.Compile(*pattern); err != nil {
			fmt.Fprintf(stderr, "-run: %v\n", err)
			return 2
		}
	}
	files, err := replay.Find(fl.Args(), filter)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	opt := replay.Options{Timeout: *timeout}
	if *verbose {
		if log, err := zap.NewDevelopment(); err == nil {
			opt.Logger = log
		}
	}
	var counts replay.Counts
	replay.RunAll(context.Background(), files, opt, func(r replay.Result) {
		counts.Add(r)
		fmt.Fprintln(stdout, line(r, *verbose))
	})
	fmt.Fprintf(stdout, "%d passed, %d failed, %d skipped\n", counts.Passed, counts.Failed, counts.Skipped)
	if counts.Failed > 0 {
		return 1
	}
	return 0
}

// line renders one result as the command's output line.
func line(r replay.Result, verbose bool) string {
	s := r.Status.String() + " " + r.Path
	switch {
	case r.Status == replay.Fail && r.Step > 0:
		s += fmt.Sprintf(": step %d: %s", r.Step, r.Reason)
	case r.Reason != "":
		s += ": " + r.Reason
	}
	if !verbose {
		return s
	}
	s += fmt.Sprintf(" (%v)", r.Elapsed.Round(time.Millisecond))
	if r.Status == replay.Fail {
		for _, u := range r.Upstream {
			s += "\n\tupstream " + u
		}
	}
	return s
}
