//go:build !linux

package main

import "errors"

func reserveHugeHeap(int) error { return errors.ErrUnsupported }
