package tiered

import (
	"fmt"
	"time"
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
