-- POST /api/v1/users with a unique email on every request (wrk's request() builds each body).
-- The email carries a per-run nonce, the wrk thread's number and a per-thread counter.

local threads = 0
local nonce = tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000))

function setup(thread)
   threads = threads + 1
   thread:set("thread_number", threads)
   thread:set("run_nonce", nonce)
end

local counter = 0

function request()
   counter = counter + 1
   local body = string.format(
      '{"email": "bench-%s-%d-%d@example.com", "name": "Bench User"}',
      run_nonce, thread_number, counter
   )
   return wrk.format("POST", wrk.path, {["Content-Type"] = "application/json"}, body)
end
