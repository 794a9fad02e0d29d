"""The model store's Lua scripts: every write is one script, hence atomic.

Why Lua rather than MULTI/EXEC: a publish must *read* the current version
(compare-and-set), *then* write under a number it computed, and trim history
depending on the pin — a transaction cannot branch on what it read, WATCH
would need a retry loop and two round trips. A script runs atomically on the
server, replicates as one unit, and is sent by SHA (``EVALSHA``) with a
fallback to loading it on ``NOSCRIPT`` (redis-py's ``Script`` does this).

Common conventions (Redis >= 6.2; no Redis 7 script flags are used):

- ``KEYS`` are the (policy, segment)'s ``current``, ``history`` and ``pin``
  keys; ``ARGV[1]`` is their common prefix ``<ns>:{<policy>:<segment>}:``, to
  which a script appends ``v:<n>`` (model bytes) and ``meta:<n>`` (JSON). All
  keys share one hash tag, so they live in one Redis Cluster slot and the
  script runs on the node that owns it.
- Replies are arrays whose first element is a status string; no element is
  ever nil (Redis would truncate the array there): "no pin" is ``''``.
- Notices go out with ``PUBLISH`` from inside the script (channels are not
  keys), so a committed write is never left without its notice. The caller
  passes the notice's JSON *head* (``{"event":..,"policy":..,"segment":..``,
  without the closing brace); the script appends
  ``,"version":<n>,"serving_version":<m>}``. An empty channel sends nothing.
- The metadata JSON is stored byte-for-byte as given (no cjson round trip,
  which would lose float precision).
"""

from __future__ import annotations

from typing import Final

__all__ = ["PIN", "PUBLISH", "READ", "UNPIN"]

#: KEYS: current, history, pin.
#: ARGV: prefix, expected version ('' = unconditional; '0' = "no model yet"),
#: history length N >= 1, model bytes, meta JSON, channel, notice head.
#: Reply: {'conflict', current} | {'ok', new_version, serving_version}.
#: Effect: current := current + 1 = n; v:n and meta:n set; n added to the
#: history sorted set; versions older than the newest N are removed from it and
#: their v:/meta: keys deleted, except the pinned one; notice published.
PUBLISH: Final = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= cur then
  return {'conflict', cur}
end
local n = redis.call('INCR', KEYS[1])
redis.call('SET', ARGV[1] .. 'v:' .. n, ARGV[4])
redis.call('SET', ARGV[1] .. 'meta:' .. n, ARGV[5])
redis.call('ZADD', KEYS[2], n, n)
local keep = tonumber(ARGV[3])
local pin = redis.call('GET', KEYS[3])
local old = redis.call('ZRANGE', KEYS[2], 0, -(keep + 1))
for _, v in ipairs(old) do
  if v ~= pin then
    redis.call('DEL', ARGV[1] .. 'v:' .. v, ARGV[1] .. 'meta:' .. v)
  end
end
if #old > 0 then
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(keep + 1))
end
local serving = n
if pin then serving = tonumber(pin) end
if ARGV[6] ~= '' then
  redis.call('PUBLISH', ARGV[6], ARGV[7] .. ',"version":' .. n .. ',"serving_version":' .. serving .. '}')
end
return {'ok', n, serving}
"""

#: KEYS: current, pin.
#: ARGV: prefix, which ('current' | 'serving' | a version number).
#: Reply: {'no_model', 0, pin} | {'no_version', current, pin, version}
#:      | {'ok', current, pin, version, bytes, meta}
#: 'serving' is the pinned version if there is a pin, else the current one.
READ: Final = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local pin = redis.call('GET', KEYS[2]) or ''
if cur == 0 then
  return {'no_model', 0, pin}
end
local v = cur
if ARGV[2] == 'serving' then
  if pin ~= '' then v = tonumber(pin) end
elseif ARGV[2] ~= 'current' then
  v = tonumber(ARGV[2])
end
local blob = redis.call('GET', ARGV[1] .. 'v:' .. v)
local meta = redis.call('GET', ARGV[1] .. 'meta:' .. v)
if not blob or not meta then
  return {'no_version', cur, pin, v}
end
return {'ok', cur, pin, v, blob, meta}
"""

#: KEYS: current, history, pin.
#: ARGV: prefix, version, channel, notice head.
#: Reply: {'no_model', 0} | {'no_version', current} | {'ok', current, previous_pin or ''}
#: Effect: pin := version (which must still have its bytes). A previous pin that
#: has left the history has its bytes deleted. Notice: version = serving = pin.
PIN: Final = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur == 0 then
  return {'no_model', 0}
end
local v = ARGV[2]
if redis.call('EXISTS', ARGV[1] .. 'v:' .. v) == 0 then
  return {'no_version', cur}
end
local old = redis.call('GET', KEYS[3])
if old and old ~= v and not redis.call('ZSCORE', KEYS[2], old) then
  redis.call('DEL', ARGV[1] .. 'v:' .. old, ARGV[1] .. 'meta:' .. old)
end
redis.call('SET', KEYS[3], v)
if ARGV[3] ~= '' then
  redis.call('PUBLISH', ARGV[3], ARGV[4] .. ',"version":' .. v .. ',"serving_version":' .. v .. '}')
end
return {'ok', cur, old or ''}
"""

#: KEYS: current, history, pin.
#: ARGV: prefix, channel, notice head.
#: Reply: {'not_pinned', current} | {'ok', current, previous_pin}
#: Effect: pin removed; if the unpinned version has left the history its bytes
#: are deleted. Notice: version = serving = current.
UNPIN: Final = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local old = redis.call('GET', KEYS[3])
if not old then
  return {'not_pinned', cur}
end
redis.call('DEL', KEYS[3])
if not redis.call('ZSCORE', KEYS[2], old) then
  redis.call('DEL', ARGV[1] .. 'v:' .. old, ARGV[1] .. 'meta:' .. old)
end
if ARGV[2] ~= '' then
  redis.call('PUBLISH', ARGV[2], ARGV[3] .. ',"version":' .. cur .. ',"serving_version":' .. cur .. '}')
end
return {'ok', cur, old}
"""
