package invalidate

import (
	"strings"

	"github.com/tiercache/tiercache/internal/slot"
)

// channelPrefix starts every invalidation channel name.
const channelPrefix = "tiercache:invalidate:"

// Groups is how many groups of hash slots a namespace's invalidations are
// spread over on a Redis Cluster: group g holds the slots from
// g*16384/Groups, and its channel (GroupChannel) lives in the first of
// them. A write publishes on a group channel of the node that runs it, so
// that no invalidation ever crosses the cluster bus (see the package doc).
const Groups = 128

// groupSize is the number of hash slots in a group.
const groupSize = slot.Count / Groups

// Channel returns the classic pub/sub channel of a namespace:
// "tiercache:invalidate:" + namespace. A single node and Sentinel use it;
// on a Cluster, it hears writers that cannot publish on a group channel (a
// release before the group channels, or Redis 6).
func Channel(namespace string) string { return channelPrefix + namespace }

// GroupChannel returns the sharded channel of group g (0 to Groups-1) of a
// namespace on a Redis Cluster: "tiercache:invalidate:<namespace>:{<tag>}",
// whose hash tag puts it in the group's first slot (GroupSlot).
func GroupChannel(namespace string, g int) string {
	return channelPrefix + namespace + ":{" + slot.Tag(GroupSlot(g)) + "}"
}

// GroupSlot returns the first hash slot of group g, where its channel and
// its log live.
func GroupSlot(g int) uint16 { return uint16(g * groupSize) }

// GroupOf returns the group of hash slot s.
func GroupOf(s uint16) int { return int(s) / groupSize }

// namespaceOf returns the namespace of a channel made by Channel or
// GroupChannel, and false for any other name. (A namespace contains no ':'
// and no '{'.)
func namespaceOf(channel string) (string, bool) {
	rest, ok := strings.CutPrefix(channel, channelPrefix)
	if !ok || rest == "" {
		return "", false
	}
	if i := strings.IndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	return rest, rest != ""
}
