#!/usr/bin/env bash
# A one-stop system calling the Liên Thông gateway's HTTP/JSON API with curl: a lookup, a
# verification, an auto-fill, a household, a batch, a bundle case and the procedure list as an
# officer, then
# a call the gateway refuses, printing the problem document (reason, Vietnamese message,
# details) and each reply's audit receipt from the response headers. Exit status: 0 when every
# reply is what the sample data makes it.
#
#   ./onestop.sh https://127.0.0.1:50443 .lienthong/pki/ca.pem \
#       .lienthong/pki/units/ha-tinh.pem .lienthong/pki/units/ha-tinh.key \
#       .lienthong/tokens/CB.H42.0001.jwt
set -euo pipefail
if [ $# -ne 5 ]; then
    echo "usage: $0 <https://host:port> <ca.pem> <unit.pem> <unit.key> <token file>" >&2
    exit 2
fi
base="$1" ca="$2" cert="$3" key="$4" token="$(tr -d '\n' <"$5")"
failures=0
headers="$(mktemp)"
trap 'rm -f "$headers"' EXIT

# call <operation> <json body> <expected HTTP status> <text the body must contain>
call() {
    local body status
    body="$(curl --silent --show-error --cacert "$ca" --cert "$cert" --key "$key" \
        --header "authorization: Bearer $token" --header 'content-type: application/json' \
        --dump-header "$headers" --write-out '\n%{http_code}' --data "$2" "$base/v1/$1")"
    status="${body##*$'\n'}"
    body="${body%$'\n'*}"
    last_body="$body"
    echo "POST /v1/$1 → $status"
    echo "  $body" | cut -c1-400
    echo "  receipt: $(grep -i '^x-audit-' "$headers" | tr -d '\r' | tr '\n' ' ')"
    if [ "$status" != "$3" ] || [[ "$body" != *"$4"* ]]; then
        echo "FAILED $1: expected $3 and '$4'" >&2
        failures=$((failures + 1))
    fi
    if ! grep -qi '^x-audit-sequence:' "$headers"; then
        echo "FAILED $1: no audit receipt in the headers" >&2
        failures=$((failures + 1))
    fi
}

ctx() { printf '{"requestId":"curl-%s","procedureCode":"%s","dossierId":"H42.01-%s"}' "$RANDOM" "$1" "$2"; }

call LookupCitizen "{\"context\":$(ctx 1.004222 0001),\"personalId\":\"042188999005\"}" 200 '"fullName":"Trần Thị Minh Thư"'
call VerifyCitizen "{\"context\":$(ctx 1.004222 0002),\"personalId\":\"042092999014\",\"claims\":[{\"field\":\"full_name\",\"value\":\"Nguyễn Văn Hà\"}]}" 200 OVERALL_RESULT_NEEDS_REVIEW
call AutofillForm "{\"context\":$(ctx LT.KHAISINH 0003),\"personalId\":\"042190999002\"}" 200 '"formId":"LT-KS-TT-BHYT"'
call GetHousehold "{\"context\":$(ctx 1.004227 0005),\"personalId\":\"042085999001\"}" 200 '"householdId":"HK0429990001"'
call VerifyBatch "[{\"context\":$(ctx 1.004227 0006),\"itemId\":\"1\",\"personalId\":\"042188999005\",\"claims\":[{\"field\":\"full_name\",\"value\":\"Trần Thị Minh Thư\"}]}]" 200 OVERALL_RESULT_MATCH
call ListProcedures '{}' 200 '"code":"1.004222"'
# A death-bundle case: her death is already registered, so the case starts at the removal from
# permanent residence, and acting on the registration again is refused.
call OpenBundle "{\"context\":$(ctx LT.KHAITU 0007),\"personalId\":\"042140999022\"}" 200 '"status":"STEP_STATUS_ALREADY_ON_RECORD"'
case_id="$(grep -o '"caseId":"LT[0-9]*"' <<<"$last_body" | head -1 | cut -d'"' -f4)"
call CompleteBundleStep "{\"context\":$(ctx 1.000656 0007),\"caseId\":\"$case_id\"}" 400 '"reason":"STEP_NOT_READY"'
call GetBundleCase "{\"context\":$(ctx LT.KHAITU 0007),\"caseId\":\"$case_id\"}" 200 "\"caseId\":\"$case_id\""
# Refused: a procedure the officer's role may not use.
call LookupCitizen "{\"context\":$(ctx 2.000488 0004),\"personalId\":\"042188999005\"}" 403 '"reason":"ROLE_NOT_ALLOWED"'

if [ "$failures" -gt 0 ]; then
    exit 1
fi
