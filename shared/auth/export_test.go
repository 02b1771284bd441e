package auth

// NewWithClock is New with the clock the expiry check reads, for tests of expired tokens.
var NewWithClock = newVerifier
