package postgres

import "github.com/jackc/pgx/v5/pgxpool"

// ChannelName exposes channelName to the tests: the notification channel of
// the database and schema a pool's connections use.
var ChannelName = channelName

// Pool exposes the store's connection pool to the tests.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }
