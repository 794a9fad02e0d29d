"""The model store's Lua scripts: every write is one script, hence atomic.

Why Lua rather than MULTI/EXEC: a publish must *read* the current version
(compare-and-set), *then* write under a number it computed, and trim history
depending on the pin — a transaction cannot branch on what it read, WATCH
would need a retry loop and two round trips. A script runs atomically on the
server, replicates as one unit, and is sent by SHA (``EVALSHA``) with a
fallback to loading it on ``NOSCRIPT`` (redis-py's ``Script`` does this).

Common conventions (Redis >= 6.2; no Redis 7 script flags are used):

- ``KEYS`` are the (policy, segment)'s ``current``, ``history``, ``pin``,
  ``promoted`` and ``nominated`` keys (READ: ``current``, ``pin``, ``promoted``); ``ARGV[1]`` is their common prefix ``<ns>:{<policy>:<segment>}:``, to
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
- A version's bytes (``v:<n>``), metadata (``meta:<n>``) and gate decision
  (``decision:<n>``) are deleted together, and only when the version has left
  the history *and* is neither pinned, promoted nor nominated (the version
  the scoring workers shadow-score for the gate): what may be served or is
  being judged is never trimmed.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DECIDE", "NOMINATE", "PIN", "PUBLISH", "READ", "UNPIN"]

#: KEYS: current, history, pin, promoted, nominated.
#: ARGV: prefix, expected version ('' = unconditional; '0' = "no model yet"),
#: history length N >= 1, model bytes, meta JSON, channel, notice head,
#: indexed ('1' = the caller skipped adding the model to the index set, which
#: lives in another slot, because it did so before; '' = it just did).
#: Reply: {'unindexed', 0} | {'conflict', current} | {'ok', new_version, serving_version}.
#: 'unindexed': indexed is '1' and there is no model (Redis lost it, and so,
#: presumably, the index entry): nothing written; the caller indexes, then retries.
#: So a model is only ever created by a publish that indexed it first.
#: Effect: current := current + 1 = n; v:n and meta:n set; n added to the
#: history sorted set; versions older than the newest N are removed from it and
#: their v:/meta:/decision: keys deleted, except the pinned, promoted and
#: nominated ones; notice published (serving_version: pin, else the new version).
PUBLISH: Final = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if ARGV[8] == '1' and cur == 0 then
  return {'unindexed', 0}
end
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= cur then
  return {'conflict', cur}
end
local n = redis.call('INCR', KEYS[1])
redis.call('SET', ARGV[1] .. 'v:' .. n, ARGV[4])
redis.call('SET', ARGV[1] .. 'meta:' .. n, ARGV[5])
redis.call('ZADD', KEYS[2], n, n)
local keep = tonumber(ARGV[3])
local pin = redis.call('GET', KEYS[3])
local promoted = redis.call('GET', KEYS[4])
local nominated = redis.call('GET', KEYS[5])
local old = redis.call('ZRANGE', KEYS[2], 0, -(keep + 1))
for _, v in ipairs(old) do
  if v ~= pin and v ~= promoted and v ~= nominated then
    redis.call('DEL', ARGV[1] .. 'v:' .. v, ARGV[1] .. 'meta:' .. v, ARGV[1] .. 'decision:' .. v)
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

#: KEYS: current, pin, promoted.
#: ARGV: prefix, which ('current' | 'serving' | 'gated' | a version number).
#: Reply: {'no_model', 0, pin} | {'no_promoted', current, pin, 0}
#:      | {'no_version', current, pin, version}
#:      | {'ok', current, pin, version, bytes, meta, promoted}
#: 'serving' is the pinned version if there is a pin, else the current one;
#: 'gated' is the pinned version, else the promoted one ('no_promoted' if neither).
READ: Final = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local pin = redis.call('GET', KEYS[2]) or ''
local promoted = redis.call('GET', KEYS[3]) or ''
if cur == 0 then
  return {'no_model', 0, pin}
end
local v = cur
if ARGV[2] == 'serving' then
  if pin ~= '' then v = tonumber(pin) end
elseif ARGV[2] == 'gated' then
  if pin ~= '' then
    v = tonumber(pin)
  elseif promoted ~= '' then
    v = tonumber(promoted)
  else
    return {'no_promoted', cur, pin, 0}
  end
elseif ARGV[2] ~= 'current' then
  v = tonumber(ARGV[2])
end
local blob = redis.call('GET', ARGV[1] .. 'v:' .. v)
local meta = redis.call('GET', ARGV[1] .. 'meta:' .. v)
if not blob or not meta then
  return {'no_version', cur, pin, v}
end
return {'ok', cur, pin, v, blob, meta, promoted}
"""

#: KEYS: current, history, pin, promoted, nominated.
#: ARGV: prefix, version, channel, notice head.
#: Reply: {'no_model', 0} | {'no_version', current} | {'ok', current, previous_pin or ''}
#: Effect: pin := version (which must still have its bytes). A previous pin that
#: has left the history (and is not promoted) has its bytes deleted.
#: Notice: version = serving = pin.
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
if old and old ~= v and not redis.call('ZSCORE', KEYS[2], old) and old ~= redis.call('GET', KEYS[4])
    and old ~= redis.call('GET', KEYS[5]) then
  redis.call('DEL', ARGV[1] .. 'v:' .. old, ARGV[1] .. 'meta:' .. old, ARGV[1] .. 'decision:' .. old)
end
redis.call('SET', KEYS[3], v)
if ARGV[3] ~= '' then
  redis.call('PUBLISH', ARGV[3], ARGV[4] .. ',"version":' .. v .. ',"serving_version":' .. v .. '}')
end
return {'ok', cur, old or ''}
"""

#: KEYS: current, history, pin, promoted, nominated.
#: ARGV: prefix, channel, notice head.
#: Reply: {'not_pinned', current} | {'ok', current, previous_pin}
#: Effect: pin removed; if the unpinned version has left the history (and is
#: not promoted) its bytes are deleted. Notice: version = serving = current.
UNPIN: Final = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local old = redis.call('GET', KEYS[3])
if not old then
  return {'not_pinned', cur}
end
redis.call('DEL', KEYS[3])
if not redis.call('ZSCORE', KEYS[2], old) and old ~= redis.call('GET', KEYS[4])
    and old ~= redis.call('GET', KEYS[5]) then
  redis.call('DEL', ARGV[1] .. 'v:' .. old, ARGV[1] .. 'meta:' .. old, ARGV[1] .. 'decision:' .. old)
end
if ARGV[2] ~= '' then
  redis.call('PUBLISH', ARGV[2], ARGV[3] .. ',"version":' .. cur .. ',"serving_version":' .. cur .. '}')
end
return {'ok', cur, old}
"""

#: KEYS: current, history, pin, promoted, nominated.
#: ARGV: prefix, version, decision ('promote' | 'hold' | 'pending'), expected
#: promoted version ('' = any; '0' = none yet), decision JSON, channel, notice head.
#: Reply: {'no_model', 0} | {'no_version', current}
#:      | {'conflict', current, promoted or ''} | {'ok', current, previous promoted or ''}
#: Effect: decision:<version> := JSON (the version must still have its bytes).
#: 'promote' also checks the expected promoted version (compare-and-set, so two
#: gates cannot both promote from different champions), sets promoted := version,
#: deletes the previous promoted version's keys if it has left the history and is
#: not pinned, and publishes a notice (event 'promote'; serving_version: the pin,
#: else the new promoted version). 'hold' and 'pending' only record the decision.
DECIDE: Final = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur == 0 then
  return {'no_model', 0}
end
local v = ARGV[2]
if redis.call('EXISTS', ARGV[1] .. 'v:' .. v) == 0 then
  return {'no_version', cur}
end
local old = redis.call('GET', KEYS[4]) or ''
if ARGV[3] ~= 'promote' then
  redis.call('SET', ARGV[1] .. 'decision:' .. v, ARGV[5])
  return {'ok', cur, old}
end
local base = old
if base == '' then base = '0' end
if ARGV[4] ~= '' and ARGV[4] ~= base then
  return {'conflict', cur, old}
end
redis.call('SET', ARGV[1] .. 'decision:' .. v, ARGV[5])
redis.call('SET', KEYS[4], v)
local pin = redis.call('GET', KEYS[3])
if old ~= '' and old ~= v and not redis.call('ZSCORE', KEYS[2], old) and old ~= pin
    and old ~= redis.call('GET', KEYS[5]) then
  redis.call('DEL', ARGV[1] .. 'v:' .. old, ARGV[1] .. 'meta:' .. old, ARGV[1] .. 'decision:' .. old)
end
local serving = v
if pin then serving = pin end
if ARGV[6] ~= '' then
  redis.call('PUBLISH', ARGV[6], ARGV[7] .. ',"version":' .. v .. ',"serving_version":' .. serving .. '}')
end
return {'ok', cur, old}
"""

#: KEYS: current, history, pin, promoted, nominated.
#: ARGV: prefix, version ('' = clear the nomination), channel, notice head.
#: Reply: {'no_model', 0} | {'no_version', current} | {'ok', current, previous nominated or ''}
#: Effect: nominated := version (which must still have its bytes), or removed. A
#: previous nominee that has left the history and is neither pinned nor promoted
#: has its keys deleted. Notice (event 'nominate'): version = the nominee (0 when
#: cleared), serving_version = the pin, else the promoted version, else 0.
NOMINATE: Final = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur == 0 then
  return {'no_model', 0}
end
local v = ARGV[2]
if v ~= '' and redis.call('EXISTS', ARGV[1] .. 'v:' .. v) == 0 then
  return {'no_version', cur}
end
local old = redis.call('GET', KEYS[5]) or ''
local pin = redis.call('GET', KEYS[3])
local promoted = redis.call('GET', KEYS[4])
if v == '' then
  redis.call('DEL', KEYS[5])
else
  redis.call('SET', KEYS[5], v)
end
if old ~= '' and old ~= v and not redis.call('ZSCORE', KEYS[2], old) and old ~= pin and old ~= promoted then
  redis.call('DEL', ARGV[1] .. 'v:' .. old, ARGV[1] .. 'meta:' .. old, ARGV[1] .. 'decision:' .. old)
end
local serving = pin or promoted or '0'
if ARGV[3] ~= '' then
  local shown = v
  if shown == '' then shown = '0' end
  redis.call('PUBLISH', ARGV[3], ARGV[4] .. ',"version":' .. shown .. ',"serving_version":' .. serving .. '}')
end
return {'ok', cur, old}
"""
