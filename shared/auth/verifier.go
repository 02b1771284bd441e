package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// ErrInvalidToken wraps every reason a token is refused.
var ErrInvalidToken = errors.New("invalid token")

// Verifier checks access tokens: signature (with the provider's published keys), issuer,
// audience and expiry. It is safe for concurrent use.
type Verifier struct {
	verifier *oidc.IDTokenVerifier
	logger   *slog.Logger
}

// keysTimeout bounds one fetch of the provider's keys.
const keysTimeout = 10 * time.Second

// New returns a Verifier for cfg. ctx must live as long as the Verifier: the key set
// fetches keys with it. Keys are fetched on first use, not here, so a service starts while
// the provider is down; they are cached, and fetched again when a token names a key the
// cache does not have (the provider rotated its keys).
func New(ctx context.Context, cfg Config, logger *slog.Logger) (*Verifier, error) {
	return newVerifier(ctx, cfg, logger, nil)
}

// newVerifier is New with a clock for the expiry check (nil: time.Now), for tests.
func newVerifier(ctx context.Context, cfg Config, logger *slog.Logger, now func() time.Time) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx = oidc.ClientContext(ctx, &http.Client{Timeout: keysTimeout})
	keys := oidc.NewRemoteKeySet(ctx, cfg.KeysURL())
	// oidc's "client ID" check is the aud check: the audience must be among the token's.
	// Its ID-token checks apply to access tokens as they are: iss, aud, exp, nbf and an
	// RS256 signature (Hydra's default).
	v := oidc.NewVerifier(cfg.Issuer, keys, &oidc.Config{ClientID: cfg.Audience, Now: now})
	return &Verifier{verifier: v, logger: logger}, nil
}

// Verify checks raw and returns who it speaks for. Every refusal wraps ErrInvalidToken.
func (v *Verifier) Verify(ctx context.Context, raw string) (Principal, error) {
	token, err := v.verifier.Verify(ctx, raw)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	var claims struct {
		Roles []string `json:"roles"`
	}
	if err := token.Claims(&claims); err != nil {
		return Principal{}, fmt.Errorf("%w: roles claim: %w", ErrInvalidToken, err)
	}
	if token.Subject == "" {
		// Ownership and quotas are by subject: a token without one cannot be told apart.
		return Principal{}, fmt.Errorf("%w: no sub claim", ErrInvalidToken)
	}
	return Principal{Subject: token.Subject, Roles: claims.Roles}, nil
}
