-- A read/write mix for wrk: 80% GET one user, 10% list, 10% create (unique emails).
-- Every answer other than 2xx counts as an error (wrk's "Non-2xx or 3xx responses").
local counter = 0
local thread_tag = ""

function setup(thread)
  thread:set("tag", tostring(math.random(1, 1e9)))
end

function init(args)
  thread_tag = tag or tostring(math.random(1, 1e9))
  math.randomseed(tonumber(thread_tag))
end

function request()
  counter = counter + 1
  local roll = math.random(1, 10)
  if roll <= 8 then
    return wrk.format("GET", "/api/v1/users/" .. math.random(1, 50))
  elseif roll == 9 then
    return wrk.format("GET", "/api/v1/users?page=" .. math.random(1, 3) .. "&page_size=20")
  end
  local body = string.format('{"email": "soak-%s-%d@example.com", "name": "Soak"}', thread_tag, counter)
  return wrk.format("POST", "/api/v1/users", {["Content-Type"] = "application/json"}, body)
end
