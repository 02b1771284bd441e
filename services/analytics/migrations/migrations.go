// Package migrations holds the analytics database's schema, applied at start-up by
// postgres.Migrate in file-name order.
package migrations

import "embed"

// FS holds the *.sql migrations.
//
//go:embed *.sql
var FS embed.FS
