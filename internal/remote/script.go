package remote

import (
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/tiercache/tiercache/internal/invalidate"
	"github.com/tiercache/tiercache/internal/slot"
)

// scriptArgs is the number of ARGV the write script takes before the
// writes' (see writeSource).
const scriptArgs = 5

// writeSource is the source of the write script, the one script through
// which every write and invalidation of the library goes, so that a write
// and the message that invalidates it happen together or not at all.
//
// KEYS are the keys written, all in one hash slot on a Cluster. ARGV:
//
//	1  the namespace
//	2  the message (see invalidate.Message); a version 3 message gets its
//	   position in the log appended, in decimal; a message of another
//	   version (it carries no position) is not logged
//	3  where: "" on a single node (the namespace's classic channel and
//	   log); on a Cluster, the group (0 to 127) of the keys' slot: the
//	   message goes to the first group, from that one on, whose channel
//	   lives on this node; "*": to every group whose channel does
//	4  how to publish: "s" on the group channel (SPUBLISH, or PUBLISH on
//	   the classic channel where the server has no sharded pub/sub), "c"
//	   on the classic channel, "-" not at all
//	5  the log's length (XADD MAXLEN ~), "0" for no log
//
// then four per key: a code, the value, the PX milliseconds ("0": no
// expiry) and the expected value. The codes: S set, N set if absent, E set
// if equal; D delete, d delete if absent (nothing to do), e delete if
// equal; I nothing (the key is only invalidated). A key that holds another
// type than a string is equal to nothing. It returns one '1' (applied) or
// '0' per key, and publishes only if it applied one (or was given no key).
//
// Each version 3 message is first appended to its channel's log, a
// stream, at the position a counter gives it, so that a subscriber that
// lost messages reads them back (see invalidate.LogKey); a message of
// another version sets the counter's unlogged mark (invalidate.UnloggedKey)
// to the counter, so that a subscriber that missed it purges instead. Where
// no group channel lives on the node, it fails before writing anything.
var writeSource = `local ns, msg, where, pub, loglen = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local T = {` + groupTags() + `}
local G = #T
local dests = {}
if where == '' then
  dests[1] = ''
elseif pub ~= '-' or loglen > 0 then
  local function here(sfx)
    return type(redis.pcall('EXISTS', 'tiercache:seq:' .. ns .. sfx)) == 'number'
  end
  if where == '*' then
    for g = 1, G do
      local sfx = ':{' .. T[g] .. '}'
      if here(sfx) then dests[#dests + 1] = sfx end
    end
  else
    local first = tonumber(where)
    for i = 0, G - 1 do
      local sfx = ':{' .. T[(first + i) % G + 1] .. '}'
      if here(sfx) then dests[1] = sfx; break end
    end
  end
  if #dests == 0 then
    return redis.error_reply('TIERCACHE no invalidation channel of namespace ' .. ns .. ' on this node')
  end
end
local out, applied, j = {}, 0, 6
for i, k in ipairs(KEYS) do
  local op, ms = ARGV[j], ARGV[j + 2]
  local ok = true
  if op == 'E' or op == 'e' then
    ok = redis.pcall('GET', k) == ARGV[j + 3]
  elseif op == 'N' or op == 'd' then
    ok = redis.call('EXISTS', k) == 0
  end
  if not ok then
    out[i] = '0'
  else
    if op == 'D' or op == 'e' then
      redis.call('DEL', k)
    elseif op == 'd' or op == 'I' then
    elseif ms == '0' then
      redis.call('SET', k, ARGV[j + 1])
    else
      redis.call('SET', k, ARGV[j + 1], 'PX', ms)
    end
    out[i] = '1'
    applied = applied + 1
  end
  j = j + 4
end
if applied == 0 and #KEYS > 0 then
  return table.concat(out)
end
for _, sfx in ipairs(dests) do
  local m = msg
  local seqkey = 'tiercache:seq:' .. ns .. sfx
  if loglen > 0 and string.byte(msg, 1) == 3 then
    local seq = redis.call('INCR', seqkey)
    m = msg .. string.format('%d', seq)
    local log, id = 'tiercache:log:' .. ns .. sfx, string.format('%d', seq) .. '-0'
    local r = redis.pcall('XADD', log, 'MAXLEN', '~', loglen, id, 'm', m)
    if type(r) == 'table' and r.err then
      redis.call('DEL', log)
      redis.call('XADD', log, 'MAXLEN', '~', loglen, id, 'm', m)
    end
  elseif loglen > 0 then
    redis.call('SET', seqkey .. ':unlogged', redis.call('GET', seqkey) or '0')
  end
  local classic = 'tiercache:invalidate:' .. ns
  if pub == 's' then
    local r = redis.pcall('SPUBLISH', classic .. sfx, m)
    if type(r) == 'table' and r.err then redis.call('PUBLISH', classic, m) end
  elseif pub == 'c' then
    redis.call('PUBLISH', classic, m)
  end
end
return table.concat(out)`

// WriteSource returns the source of the write script, for a program in
// another language to EVAL (see the invalidate package's doc).
func WriteSource() string { return writeSource }

var writeScript = redis.NewScript(writeSource)

// groupTags returns the Lua list of the groups' hash tags, group 0 first.
func groupTags() string {
	var b strings.Builder
	for g := range invalidate.Groups {
		if g > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(slot.Tag(invalidate.GroupSlot(g))))
	}
	return b.String()
}

// invalidation appends to args the write script's first ARGV (see
// writeSource) for a message payload about keys whose first Redis key is
// first ("" for no key: an invalidation of every key); silent, for the
// writes of a Silent store, neither publishes nor logs it.
func (s *Store) invalidation(args []any, payload []byte, first string, silent bool) []any {
	where := ""
	if s.cluster {
		where = "*"
		if first != "" {
			where = strconv.Itoa(invalidate.GroupOf(slot.Of(first)))
		}
	}
	pub := "s"
	switch {
	case silent:
		pub = "-"
	case !s.cluster || s.classic:
		pub = "c"
	}
	logLen := s.logLen
	if silent {
		logLen = 0
	}
	return append(args, s.namespace, payload, where, pub, logLen)
}
