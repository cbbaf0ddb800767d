package app

import (
	"io"
	"log/slog"
	"strings"

	"github.com/keyfort/keyfort/internal/config"
	"github.com/keyfort/keyfort/internal/progress"
)

// NewLogger returns the process logger for the configured level and
// format: text when format is "text", or "auto" and w is a terminal; JSON
// otherwise.
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	switch strings.ToLower(level) {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	text := format == config.LogFormatText || (format != config.LogFormatJSON && progress.IsTerminal(w))
	if text {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
