package replay

import (
	"context"
	"io/fs"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// Find returns the scenario files under each path (a file, or a directory
// searched recursively for *.rpl and *.crpl), sorted, keeping those whose
// path matches filter when it is not nil.
func Find(paths []string, filter *regexp.Regexp) ([]string, error) {
	var files []string
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			named := path == p // a file named on the command line runs whatever its suffix
			if d.IsDir() || !named && !strings.HasSuffix(path, ".rpl") && !strings.HasSuffix(path, ".crpl") {
				return nil
			}
			if filter == nil || filter.MatchString(path) {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}

// RunFile parses and plays one scenario file; a file that does not parse
// fails.
func RunFile(ctx context.Context, path string, opt Options) Result {
	sc, err := ParseFile(path)
	if err != nil {
		return Result{Path: path, Dialect: DialectOf(path), Status: Fail, Reason: "parse: " + err.Error()}
	}
	return Run(ctx, sc, opt)
}

// RunAll plays files in parallel (GOMAXPROCS at a time) and calls report
// with each result in file order as soon as it and every earlier one are
// done.
func RunAll(ctx context.Context, files []string, opt Options, report func(Result)) []Result {
	results := make([]Result, len(files))
	ready := make([]chan struct{}, len(files))
	for i := range ready {
		ready[i] = make(chan struct{})
	}
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] = RunFile(ctx, f, opt)
			close(ready[i])
		}()
	}
	for i := range files {
		<-ready[i]
		if report != nil {
			report(results[i])
		}
	}
	wg.Wait()
	return results
}

// Counts tallies results.
type Counts struct{ Passed, Failed, Skipped int }

// Add counts one result.
func (c *Counts) Add(r Result) {
	switch r.Status {
	case Pass:
		c.Passed++
	case Fail:
		c.Failed++
	default:
		c.Skipped++
	}
}
