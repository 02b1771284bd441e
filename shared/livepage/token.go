package livepage

import (
	"context"
	"sync"
	"time"

	"github.com/warrenhq/warren/shared/auth/login"
)

// tokenSource logs the page's customer in when it has no valid access token, and keeps
// the token until shortly before it expires or the order API refuses it.
type tokenSource struct {
	cfg            login.Config
	user, password string

	mu     sync.Mutex
	token  string
	expiry time.Time
}

func (s *tokenSource) get(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token != "" && time.Until(s.expiry) > time.Minute {
		return s.token, nil
	}
	tok, err := login.Password(ctx, s.cfg, s.user, s.password)
	if err != nil {
		return "", err
	}
	s.token, s.expiry = tok.AccessToken, tok.Expiry
	if s.expiry.IsZero() {
		s.expiry = time.Now().Add(5 * time.Minute)
	}
	return s.token, nil
}

// invalidate forgets token after the order API refused it (401), so that the next call
// logs in again.
func (s *tokenSource) invalidate(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.token == token {
		s.token = ""
	}
}
