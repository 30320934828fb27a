// Package slot computes Redis Cluster hash slots, and the hash tags that
// pin a name to a chosen slot.
package slot

import (
	"strconv"
	"strings"
	"sync"
)

// Count is the number of hash slots of a Redis Cluster.
const Count = 16384

// Of returns the Redis Cluster hash slot of key: CRC16 (XMODEM) of the
// key, or of its hash tag (the part between the first '{' and the next '}'
// when that part is not empty), modulo 16384.
func Of(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return crc16(key) % Count
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the checksum
// Redis Cluster uses for key slots.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

var (
	tagsOnce sync.Once
	tags     [Count]string
)

// Tag returns a short hash tag whose slot is s: a name containing "{" +
// Tag(s) + "}" lives in slot s. It is the shortest such string of base-36
// digits, the same in every process. The table is built on first use
// (some 200,000 checksums of a few bytes).
func Tag(s uint16) string {
	tagsOnce.Do(func() {
		left := Count
		for n := uint64(0); left > 0; n++ {
			t := strconv.FormatUint(n, 36)
			if sl := crc16(t) % Count; tags[sl] == "" {
				tags[sl] = t
				left--
			}
		}
	})
	return tags[s%Count]
}
