// Package racy has a test with a data race, which only the race detector
// fails.
package racy

import "testing"

func TestRace(t *testing.T) {
	n := 0
	done := make(chan bool)
	go func() {
		n++
		done <- true
	}()
	n++
	<-done
	t.Log(n)
}
