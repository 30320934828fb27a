package tiered

import (
	"errors"
	"fmt"
	"time"

	"github.com/tiercache/tiercache/internal/field"
	"github.com/tiercache/tiercache/internal/invalidate"
)

// The shapes of a valid option. Each returns nil for a valid value and
// otherwise an error that names the field, says what it must be and what it
// got; errors.Join of several reports every invalid field.

// positiveMillis: 0 (its default, or none) or at least 1ms, the least a
// duration sent to Redis in milliseconds can be.
func positiveMillis(field string, d time.Duration) error {
	if d == 0 || d >= time.Millisecond {
		return nil
	}
	return fmt.Errorf("tiered: %s must be 0 or at least 1ms, got %v", field, d)
}

// orOff: negative (off), 0 (its default) or at least 1ms.
func orOff(field string, d time.Duration) error {
	if d <= 0 || d >= time.Millisecond {
		return nil
	}
	return fmt.Errorf("tiered: %s must be negative (off), 0 (the default) or at least 1ms, got %v", field, d)
}

// nonNegative: 0 (its default) or more.
func nonNegative(field string, d time.Duration) error {
	if d >= 0 {
		return nil
	}
	return fmt.Errorf("tiered: %s must be >= 0, got %v", field, d)
}

// fraction: in [0, 1); NaN is refused too.
func fraction(field string, f float64) error {
	if f >= 0 && f < 1 {
		return nil
	}
	return fmt.Errorf("tiered: %s must be in [0, 1), got %v", field, f)
}

// wrapFields gives each invalid field of an engine's err (see field.Each)
// tiered's name for it, by wrapping: `tiered: LocalShards: local: Shards
// must be …`, or `tiered: invalidate: MaxBackoff must be …` where the names
// agree. The rule and its text stay the engine's.
func wrapFields(err error, names map[string]string) error {
	var errs []error
	field.Each(err, func(fe *field.Error, err error) {
		if fe != nil {
			if name, ok := names[fe.Name]; ok {
				errs = append(errs, fmt.Errorf("tiered: %s: %w", name, err))
				return
			}
		}
		errs = append(errs, fmt.Errorf("tiered: %w", err))
	})
	return errors.Join(errs...)
}

// checkSubscriber checks the subscription's options by its own rules.
func checkSubscriber(o invalidate.Options) error {
	return wrapFields(invalidate.CheckOptions(o), nil)
}

// joinFields is errors.Join of errs with the errors that errors.Join put
// together taken apart: one error per invalid field, at one level.
func joinFields(errs ...error) error {
	var all []error
	for _, err := range errs {
		field.Each(err, func(_ *field.Error, err error) { all = append(all, err) })
	}
	return errors.Join(all...)
}
