// Package clients holds the checks of a redis.UniversalClient that more
// than one engine makes, so that each rule has one home.
package clients

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/redis/go-redis/v9"
)

// NotNil reports a nil client: untyped, or a nil pointer (or other nil
// value: map, slice, func, chan) in the interface, which would crash at the
// first command. The error has no package prefix, for the caller to add
// its own: "client is nil" or "client is a nil *redis.Client".
func NotNil(c redis.UniversalClient) error {
	if c == nil {
		return errors.New("client is nil")
	}
	switch v := reflect.ValueOf(c); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		if v.IsNil() {
			return fmt.Errorf("client is a nil %T", c)
		}
	}
	return nil
}
