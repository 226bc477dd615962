-- wrk script for scripts/load/run.sh. Configured through the environment,
-- read at load time in every wrk thread, so that the plain scenarios stay
-- "static" (wrk builds the request once and sends it as is):
--
--   LOAD_METHOD, LOAD_BODY          request method and form body
--   LOAD_AUTH                       Authorization header value
--   LOAD_IF_NONE_MATCH              If-None-Match header value
--   LOAD_COOKIE                     Cookie header value (a browser session)
--   LOAD_EXPECT                     static: the one status that counts as
--                                   success (e.g. 303 for /authorize with a
--                                   session, whose answer is a redirect)
--   LOAD_MODE                       static (default) | refresh | revoke | mint
--   LOAD_TOKENS                     refresh/revoke: file of tokens, one a line
--   LOAD_CLIENT                     refresh: the (public) client_id
--   LOAD_OUT                        mint: access tokens are appended to LOAD_OUT.<thread>
--   LOAD_THREADS                    the -t given to wrk (to split LOAD_TOKENS)
--   LOAD_DELAY_MS                   pause before each request (a paced probe)
--
-- done() prints one line "RESULT {json}" with the throughput and latency
-- percentiles, which run.sh collects. Its non2xx is wrk's count of
-- statuses above 399; with LOAD_EXPECT it is every response of another
-- status instead (wrk takes any 3xx as a success, so a 200 sign-in page
-- instead of the 303 with a code, a session that was not accepted, would
-- otherwise pass unnoticed), and for 303 also one whose Location has no
-- code=.
--
-- refresh: each thread holds a pool of refresh tokens (its share of
-- LOAD_TOKENS, one per connection). A request takes a token from the pool;
-- the response's new refresh token goes back into it. wrk calls response()
-- before the same connection's next request(), so every token is presented
-- exactly once, and a rotation that was lost or refused breaks its chain
-- (counted as `broken`, and as a non-2xx response). wrk calls request() of
-- thread 0 once more, before starting, to check the request it builds; the
-- token that call takes is never sent, so LOAD_TOKENS holds one token more
-- than there are connections, and line i goes to thread i % LOAD_THREADS
-- (with connections a multiple of threads, the spare lands in thread 0).

local mode = os.getenv("LOAD_MODE") or "static"

wrk.method = os.getenv("LOAD_METHOD") or "GET"
if mode == "refresh" or mode == "revoke" or mode == "mint" then
  wrk.method = "POST"
end
wrk.headers["Accept"] = "application/json"
if os.getenv("LOAD_AUTH") then
  wrk.headers["Authorization"] = os.getenv("LOAD_AUTH")
end
if os.getenv("LOAD_IF_NONE_MATCH") then
  wrk.headers["If-None-Match"] = os.getenv("LOAD_IF_NONE_MATCH")
end
if os.getenv("LOAD_COOKIE") then
  wrk.headers["Cookie"] = os.getenv("LOAD_COOKIE")
end
if os.getenv("LOAD_BODY") then
  wrk.body = os.getenv("LOAD_BODY")
end
if wrk.method == "POST" then
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

-- Counters, per thread; done() reads them through thread:get.
ok = 0
unexpected = 0
broken = 0
reused = 0
minted = 0

-- setup() runs in the main state once per thread.
local threads = {}
local next_id = 0
function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local function read_lines(path, tid, nthreads)
  local lines = {}
  local i = 0
  for line in io.lines(path) do
    if line ~= "" then
      if i % nthreads == tid then
        table.insert(lines, line)
      end
      i = i + 1
    end
  end
  return lines
end

local pool = {}
local cursor = 0

if mode == "refresh" then
  local client = os.getenv("LOAD_CLIENT")
  function init(args)
    pool = read_lines(os.getenv("LOAD_TOKENS"), tid, tonumber(os.getenv("LOAD_THREADS")))
  end
  function request()
    local token = table.remove(pool)
    if token == nil then
      -- Only after a broken chain: send something that fails visibly.
      token = "sigil_rt_exhausted"
    end
    local body = "grant_type=refresh_token&client_id=" .. client .. "&refresh_token=" .. token
    return wrk.format(nil, nil, nil, body)
  end
  function response(status, headers, body)
    local token = body:match('"refresh_token":"(sigil_rt_[A-Za-z0-9_-]+)"')
    if status == 200 and token then
      ok = ok + 1
      table.insert(pool, token)
    else
      broken = broken + 1
      if broken <= 3 then
        io.stderr:write("refresh failed: ", status, " ", body, "\n")
      end
    end
  end
elseif mode == "revoke" then
  function init(args)
    pool = read_lines(os.getenv("LOAD_TOKENS"), tid, tonumber(os.getenv("LOAD_THREADS")))
  end
  function request()
    cursor = cursor + 1
    if cursor > #pool then
      -- Ran out of fresh tokens: revoke already revoked ones (still a full
      -- verify and a deny-list insert), and say so in the report.
      reused = reused + 1
      cursor = 1
    end
    return wrk.format(nil, nil, nil, "token=" .. pool[cursor])
  end
  function response(status, headers, body)
    if status == 200 then ok = ok + 1 end
  end
elseif mode == "mint" then
  local out
  function init(args)
    out = io.open(os.getenv("LOAD_OUT") .. "." .. tid, "w")
  end
  function response(status, headers, body)
    local token = body:match('"access_token":"([A-Za-z0-9_.-]+)"')
    if status == 200 and token then
      minted = minted + 1
      out:write(token, "\n")
      if minted % 256 == 0 then out:flush() end
    end
  end
end

local expect = tonumber(os.getenv("LOAD_EXPECT") or "")
if mode == "static" and expect then
  -- The request stays static (no request()); only the answers are read.
  function response(status, headers, body)
    local location = headers["location"] or headers["Location"] or ""
    if status == expect and (expect ~= 303 or location:find("[?&]code=")) then
      ok = ok + 1
    else
      unexpected = unexpected + 1
      if unexpected <= 3 then
        io.stderr:write("unexpected answer: ", status, " ", location, " ", body:sub(1, 200), "\n")
      end
    end
  end
end

if os.getenv("LOAD_DELAY_MS") then
  local pause = tonumber(os.getenv("LOAD_DELAY_MS"))
  function delay()
    return pause
  end
end

function done(summary, latency, requests)
  local total = { ok = 0, unexpected = 0, broken = 0, reused = 0, minted = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(total) do
      total[name] = total[name] + (thread:get(name) or 0)
    end
  end
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  local non2xx = errors.status
  if mode == "static" and expect then
    non2xx = total.unexpected
  end
  io.write(string.format(
    'RESULT {"requests":%d,"seconds":%.3f,"rps":%.1f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"non2xx":%d,"socket_errors":%d,"timeouts":%d,"ok":%d,"broken":%d,"reused":%d,"minted":%d%s}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000,
    non2xx, errors.connect + errors.read + errors.write, errors.timeout,
    total.ok, total.broken, total.reused, total.minted,
    expect and string.format(',"expect":%d', expect) or ""))
end
