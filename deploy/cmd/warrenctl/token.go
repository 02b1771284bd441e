package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/warrenhq/warren/deploy/internal/demousers"
	"github.com/warrenhq/warren/deploy/internal/hydraadmin"
	"github.com/warrenhq/warren/shared/auth/login"
)

// TokenOptions are token's flags, and the password from the environment.
type TokenOptions struct {
	// User logs in.
	User string
	// Password is TOKEN_PASSWORD (or the file TOKEN_PASSWORD_FILE names): from the
	// environment, never a flag, which every user of the machine could read. Empty: the
	// user's password in OIDC.UsersFile.
	Password string
	// JSON prints the whole token response (access, refresh and ID tokens, expiry).
	JSON bool
}

func tokenFlags(c *Config, fs *flag.FlagSet) {
	fs.StringVar(&c.Token.User, "user", "", "user to log in as, e.g. alice (required)")
	fs.StringVar(&c.OIDC.Issuer, "issuer", c.OIDC.Issuer, "OpenID Connect issuer (OIDC_ISSUER)")
	fs.StringVar(&c.OIDC.UsersFile, "users-file", c.OIDC.UsersFile, "demo users file to read the password from (USERS_FILE); else TOKEN_PASSWORD[_FILE]")
	fs.BoolVar(&c.Token.JSON, "json", false, "print the whole token response as JSON instead of the access token alone")
}

// token logs a user in through the provider and the login app as a browser would
// (shared/auth/login) and prints their access token, for `curl -H "Authorization: Bearer
// $TOKEN"`.
func token(ctx context.Context, inv *invocation) error {
	opts, cfg := inv.config.Token, inv.config.OIDC
	if opts.User == "" {
		return errors.New("--user is required")
	}
	password := opts.Password
	if password == "" {
		if cfg.UsersFile == "" {
			return errors.New("no password: set TOKEN_PASSWORD (or TOKEN_PASSWORD_FILE), or give the users file (--users-file, USERS_FILE)")
		}
		users, err := demousers.Load(cfg.UsersFile)
		if err != nil {
			return err
		}
		u, err := users.User(opts.User)
		if err != nil {
			return fmt.Errorf("%s: %w", cfg.UsersFile, err)
		}
		password = u.Password
	}
	tok, err := login.Password(ctx, login.Config{
		Issuer: cfg.Issuer, ClientID: hydraadmin.CLIClientID, RedirectURL: hydraadmin.CLIRedirectURL,
		Audience: []string{hydraadmin.Audience}, Scopes: []string{"openid", "offline_access"},
	}, opts.User, password)
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(inv.stdout, map[string]any{
			"access_token": tok.AccessToken, "token_type": tok.TokenType, "expiry": tok.Expiry,
			"refresh_token": tok.RefreshToken, "id_token": tok.Extra("id_token"),
		})
	}
	_, err = fmt.Fprintln(inv.stdout, tok.AccessToken)
	return err
}
