-- wrk script for bench/bench_service.py: every request is POST /v1/check with 20 FRESH records
-- under policies/support-assistant.yaml, each with an id and key no earlier request used and
-- timestamps seconds old, so the service decides them as real traffic (allowed), never as
-- repeats, superseded copies or INVALID_RECORD. No stripe records (they must be signed).
-- Run: wrk -s bench/check_request.lua URL -- PREFIX (PREFIX: unique per wrk run).

local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_tag", tostring(thread_count))
end

local prefix = "r"
local sent = 0
local stamp_second = -1
local observed, updated, hop, opened

function init(args)
  prefix = (args[1] or "r") .. "t" .. (thread_tag or "0")
end

local function stamps()
  local now = os.time()
  if now ~= stamp_second then
    stamp_second = now
    observed = os.date("!%Y-%m-%dT%H:%M:%SZ", now - 5)
    updated = os.date("!%Y-%m-%dT%H:%M:%SZ", now - 65)
    hop = os.date("!%Y-%m-%dT%H:%M:%SZ", now - 6)
    opened = os.date("!%Y-%m-%dT%H:%M:%SZ", now - 3600)
  end
end

local function customer(tag)
  return '{"id":"c' .. tag .. '","object":"customer","key":"C-' .. tag .. '","source":"salesforce",'
    .. '"observed_at":"' .. observed .. '","updated_at":"' .. updated .. '",'
    .. '"fields":{"email":"user' .. tag .. '@example.com","name":"Customer ' .. tag .. '",'
    .. '"credit_limit":5000.0,"tier":"gold"},"content":"Customer C-' .. tag .. ', gold tier."}'
end

local function order(tag)
  return '{"id":"o' .. tag .. '","object":"order","key":"O-' .. tag .. '","source":"sap",'
    .. '"observed_at":"' .. observed .. '","updated_at":"' .. updated .. '",'
    .. '"fields":{"status":"shipped","total":249.9,"currency":"EUR"},'
    .. '"content":"Order O-' .. tag .. ' shipped; total 249.90 EUR.",'
    .. '"lineage":[{"system":"sap","at":"' .. hop .. '"}]}'
end

local function support_case(tag)
  return '{"id":"s' .. tag .. '","object":"support_case","key":"SC-' .. tag .. '","source":"salesforce",'
    .. '"observed_at":"' .. observed .. '",'
    .. '"fields":{"status":"open","priority":2,"opened_at":"' .. opened .. '"},'
    .. '"content":"Support case SC-' .. tag .. ' is open."}'
end

local function product(tag)
  return '{"id":"p' .. tag .. '","object":"product","key":"P-' .. tag .. '","source":"warehouse",'
    .. '"observed_at":"' .. observed .. '","updated_at":"' .. updated .. '",'
    .. '"fields":{"sku":"SKU-1234","stock":7},"content":"Product P-' .. tag .. ': 7 in stock."}'
end

-- 8 customers, 4 orders, 4 support cases, 4 products: 20 records.
local makers = {
  customer, customer, customer, customer, customer, customer, customer, customer,
  order, order, order, order,
  support_case, support_case, support_case, support_case,
  product, product, product, product,
}

local headers = { ["Content-Type"] = "application/json" }

function request()
  stamps()
  sent = sent + 1
  local base = prefix .. "n" .. sent .. "i"
  local parts = {}
  for i, make in ipairs(makers) do
    parts[i] = make(base .. i)
  end
  local body = '{"pipeline":"bench","records":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", wrk.path, headers, body)  -- the path of the URL wrk was given
end
