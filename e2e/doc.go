// Package e2e is Warren's end-to-end suite: it runs every service in a container and checks
// the whole flow from outside, as a user would.
package e2e
