package local_test

import (
	"testing"

	"github.com/tiercache/tiercache/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }
