package service

import (
	"fmt"
	"testing"
	"time"
)

func TestLimitersAreOnePerSubject(t *testing.T) {
	l := newLimiters(SubjectLimit{PerSecond: 1, Burst: 2})
	now := time.Unix(0, 0)
	for i, want := range []time.Duration{0, 0, time.Second} {
		if got := l.take("alice", now); got != want {
			t.Errorf("alice's request %d waits %s, want %s", i+1, got, want)
		}
	}
	// Alice's spending is not Bob's.
	if got := l.take("bob", now); got != 0 {
		t.Errorf("bob's first request waits %s, want 0", got)
	}
	// A refused request spent nothing: a second later alice has exactly one token.
	now = now.Add(time.Second)
	if got := l.take("alice", now); got != 0 {
		t.Errorf("alice a second later waits %s, want 0", got)
	}
	if got := l.take("alice", now); got != time.Second {
		t.Errorf("alice's next request waits %s, want 1s", got)
	}
}

func TestLimitersStayBounded(t *testing.T) {
	l := newLimiters(SubjectLimit{PerSecond: 1, Burst: 5, MaxSubjects: 100})
	now := time.Unix(0, 0)
	for i := range 10_000 {
		l.take(fmt.Sprintf("subject-%d", i), now)
		if n := l.len(); n > 100 {
			t.Fatalf("%d subjects remembered after %d, want at most 100", n, i+1)
		}
	}
	// The most recent subjects are the ones kept: subject-9999 has spent a token.
	for range 4 {
		l.take("subject-9999", now)
	}
	if got := l.take("subject-9999", now); got == 0 {
		t.Error("subject-9999 was forgotten although it was the most recent")
	}
	// Buckets idle long enough to be full again are dropped on the next call.
	l.take("late", now.Add(5*time.Second))
	if n := l.len(); n != 1 {
		t.Errorf("%d subjects remembered after all went idle, want 1", n)
	}
}
