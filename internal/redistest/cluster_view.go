package redistest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// nodeInfo is one line of CLUSTER NODES.
type nodeInfo struct {
	id, addr string
	master   bool
	masterID string   // the master a replica follows; "" for a master
	slots    [][2]int // inclusive ranges a master serves
	failing  bool     // flagged fail or fail?
	joining  bool     // flagged handshake or noaddr: not a member yet
}

// view is the cluster as one node sees it.
type view []nodeInfo

// parseNodes parses the reply of CLUSTER NODES. Lines it cannot read are
// errors: the reply comes from a server of the test's own.
func parseNodes(text string) (view, error) {
	var v view
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("redistest: CLUSTER NODES line %q: too few fields", line)
		}
		n := nodeInfo{id: f[0], addr: f[1]}
		n.addr, _, _ = strings.Cut(n.addr, "@")
		n.addr, _, _ = strings.Cut(n.addr, ",")
		for flag := range strings.SplitSeq(f[2], ",") {
			switch flag {
			case "master":
				n.master = true
			case "fail", "fail?":
				n.failing = true
			case "handshake", "noaddr":
				n.joining = true
			}
		}
		if f[3] != "-" {
			n.masterID = f[3]
		}
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") {
				continue // a slot being migrated or imported
			}
			lo, hi, isRange := strings.Cut(s, "-")
			a, err1 := strconv.Atoi(lo)
			b, err2 := a, error(nil)
			if isRange {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("redistest: CLUSTER NODES line %q: slot %q", line, s)
			}
			n.slots = append(n.slots, [2]int{a, b})
		}
		v = append(v, n)
	}
	slices.SortFunc(v, func(a, b nodeInfo) int { return strings.Compare(a.addr, b.addr) })
	return v, nil
}

func (v view) byID(id string) *nodeInfo {
	for i := range v {
		if v[i].id == id {
			return &v[i]
		}
	}
	return nil
}

func (v view) byAddr(addr string) *nodeInfo {
	for i := range v {
		if v[i].addr == addr {
			return &v[i]
		}
	}
	return nil
}

// owner returns the master that serves slot, or nil.
func (v view) owner(slot int) *nodeInfo {
	for i := range v {
		for _, r := range v[i].slots {
			if v[i].master && slot >= r[0] && slot <= r[1] {
				return &v[i]
			}
		}
	}
	return nil
}

// masters returns the masters that serve slots, by their first slot.
func (v view) masters() []nodeInfo {
	var ms []nodeInfo
	for _, n := range v {
		if n.master && len(n.slots) > 0 {
			ms = append(ms, n)
		}
	}
	slices.SortFunc(ms, func(a, b nodeInfo) int { return a.slots[0][0] - b.slots[0][0] })
	return ms
}

// signature is what every node must agree on: roles, replication, slots,
// failure flags.
func (v view) signature() string {
	var b strings.Builder
	for _, n := range v {
		master := ""
		if m := v.byID(n.masterID); m != nil {
			master = m.addr
		}
		fmt.Fprintf(&b, "%s master=%v of=%s slots=%v failing=%v joining=%v\n", n.addr, n.master, master, n.slots, n.failing, n.joining)
	}
	return b.String()
}

// complete reports why v is not a formed, healthy cluster of three masters
// with replicas replicas each, if it is not.
func (v view) complete(replicas int) error {
	if want := clusterMasters * (1 + replicas); len(v) != want {
		return fmt.Errorf("%d nodes known, want %d", len(v), want)
	}
	covered := 0
	for _, n := range v {
		if n.failing || n.joining {
			return fmt.Errorf("node %s is failing or joining", n.addr)
		}
		for _, r := range n.slots {
			covered += r[1] - r[0] + 1
		}
	}
	if covered != slotCount {
		return fmt.Errorf("%d of %d slots served", covered, slotCount)
	}
	for _, m := range v.masters() {
		if got := len(v.replicasOf(m.id)); got != replicas {
			return fmt.Errorf("master %s has %d replicas, want %d", m.addr, got, replicas)
		}
	}
	if len(v.masters()) != clusterMasters {
		return fmt.Errorf("%d masters serve slots, want %d", len(v.masters()), clusterMasters)
	}
	return nil
}

// replicasOf returns the addresses of the replicas of the master id that
// are not flagged failing.
func (v view) replicasOf(id string) []string {
	var rs []string
	for _, n := range v {
		if !n.master && n.masterID == id && !n.failing {
			rs = append(rs, n.addr)
		}
	}
	return rs
}
