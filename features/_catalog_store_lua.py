"""The catalog store's Lua scripts: a publish and a read are each one atomic script.

Keys share the hash tag ``{catalog}`` (one Redis Cluster slot): ``ARGV[1]``
is the prefix ``<ns>:{catalog}:`` to which the scripts append ``rec:<n>``
(records, zlib JSON Lines), ``col:<n>`` (static feature columns, ``.npz``)
and ``meta:<n>`` (JSON). Replies never contain nil (Redis would cut the
array there). The notice is published from inside the script, so a committed
version never goes without its notice.
"""

from __future__ import annotations

from typing import Final

__all__ = ["PUBLISH", "READ"]

#: KEYS: current, history.
#: ARGV: prefix, expected version ('0' = empty store), history length N >= 1,
#: records, columns, meta JSON, channel.
#: Reply: {'conflict', current} | {'ok', n}.
#: Effect: current := expected + 1 = n; rec/col/meta:n set; n added to history;
#: versions older than the newest N removed with their keys; notice published.
PUBLISH: Final = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[2]) ~= cur then
  return {'conflict', cur}
end
local n = cur + 1
redis.call('SET', ARGV[1] .. 'rec:' .. n, ARGV[4])
redis.call('SET', ARGV[1] .. 'col:' .. n, ARGV[5])
redis.call('SET', ARGV[1] .. 'meta:' .. n, ARGV[6])
redis.call('SET', KEYS[1], n)
redis.call('ZADD', KEYS[2], n, n)
local keep = tonumber(ARGV[3])
local old = redis.call('ZRANGE', KEYS[2], 0, -(keep + 1))
for _, v in ipairs(old) do
  redis.call('DEL', ARGV[1] .. 'rec:' .. v, ARGV[1] .. 'col:' .. v, ARGV[1] .. 'meta:' .. v)
end
if #old > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(keep + 1))
end
if ARGV[7] ~= '' then
  redis.call('PUBLISH', ARGV[7], '{"event":"catalog","version":' .. n .. '}')
end
return {'ok', n}
"""

#: KEYS: current.
#: ARGV: prefix, which ('current' | a version number), parts ('all' | 'meta').
#: Reply: {'empty', 0} | {'no_version', current, v} | {'ok', current, v, meta, records, columns}
#: (records and columns are '' when parts is 'meta').
READ: Final = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur == 0 then
  return {'empty', 0}
end
local v = cur
if ARGV[2] ~= 'current' then v = tonumber(ARGV[2]) end
local meta = redis.call('GET', ARGV[1] .. 'meta:' .. v)
if not meta then
  return {'no_version', cur, v}
end
if ARGV[3] == 'meta' then
  return {'ok', cur, v, meta, '', ''}
end
local rec = redis.call('GET', ARGV[1] .. 'rec:' .. v)
local col = redis.call('GET', ARGV[1] .. 'col:' .. v)
if not rec or not col then
  return {'no_version', cur, v}
end
return {'ok', cur, v, meta, rec, col}
"""
