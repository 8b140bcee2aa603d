-- wrk_load.lua - the request mix of the benchmark's `load` phase (bench/phase_load.c).
--
-- usage: wrk ... -s bench/wrk_load.lua URL -- KEY WAIT ENTRY...
--   KEY    the API key sent as "Authorization: Bearer KEY" ("-" sends none)
--   WAIT   sent as "Prefer: wait=WAIT" (RFC 7240): how long the client waits for a write's turn
--          before it would rather have a 429 ("-" sends none)
--   ENTRY  "WEIGHT|METHOD|PATH|BODY": requests are drawn in proportion to WEIGHT;
--          BODY (may be empty) is sent as application/json.
-- At the end one line is printed for the driver to read:
--   DS_LOAD requests=N seconds=S s2xx=N s429=N other=N timeouts=N connect=N read=N write=N p50_us=N p99_us=N
-- (statuses counted per response; socket errors and latency as wrk measured them).

local entries = {}
local total_weight = 0
local threads = {}

function init(args)
   local key, wait = args[1], args[2]
   local headers = {}
   if key and key ~= "-" then
      headers["Authorization"] = "Bearer " .. key
   end
   if wait and wait ~= "-" then
      headers["Prefer"] = "wait=" .. wait
   end
   for i = 3, #args do
      local weight, method, path, body = args[i]:match("^(%d+)|(%u+)|([^|]+)|(.*)$")
      if not weight then
         error("bad entry: " .. args[i])
      end
      local h = {}
      for k, v in pairs(headers) do
         h[k] = v
      end
      if body ~= "" then
         h["Content-Type"] = "application/json"
      else
         body = nil
      end
      total_weight = total_weight + tonumber(weight)
      entries[#entries + 1] = {upto = total_weight, req = wrk.format(method, path, h, body)}
   end
   s2xx, s429, other = 0, 0, 0
   math.randomseed(os.time())
end

function setup(thread)
   threads[#threads + 1] = thread
end

function request()
   local r = math.random(total_weight)
   for _, e in ipairs(entries) do
      if r <= e.upto then
         return e.req
      end
   end
   return entries[#entries].req
end

function response(status, headers, body)
   if status >= 200 and status < 300 then
      s2xx = s2xx + 1
   elseif status == 429 then
      s429 = s429 + 1
   else
      other = other + 1
   end
end

function done(summary, latency, requests)
   local a, b, c = 0, 0, 0
   for _, t in ipairs(threads) do
      a = a + t:get("s2xx")
      b = b + t:get("s429")
      c = c + t:get("other")
   end
   io.write(string.format(
      "DS_LOAD requests=%d seconds=%.3f s2xx=%d s429=%d other=%d timeouts=%d connect=%d read=%d write=%d " ..
      "p50_us=%d p99_us=%d\n",
      summary.requests, summary.duration / 1e6, a, b, c, summary.errors.timeout, summary.errors.connect,
      summary.errors.read, summary.errors.write, latency:percentile(50), latency:percentile(99)))
end
