"""Differential test: the same requests to OpenSandbox 1.1.1 and to Sandgate, answers compared.

Usage: python run.py REFERENCE_ADDR SANDGATE_ADDR API_KEY ALLOW_LIST REPORT_JSON
(addresses are host:port). Sends the sequence in cases.py to both servers
in lockstep, then runs the published SDK's flow (sdk_flow.py) against each.
Every difference (compare.py) must be allowed by an entry of the allow-list,
and every entry must still match a difference. Prints one line per step,
then the unexpected differences and stale entries with the request, both
answers and the differing paths, then a summary line. Exit status 0 only
when nothing unexpected was found.
"""

from __future__ import annotations

import json
import sys
import time

import httpx

import cases
import sdk_flow
from compare import Difference, allowed_by, compare_answers, load_allow_list, short
from sdk_flow import answer_of

TIME_LIMIT = 150  # seconds for the whole sequence; the script's own bound is larger


class Server:
    def __init__(self, name: str, addr: str, api_key: str):
        self.name = name
        self.addr = addr
        self.api_key = api_key
        self.names: dict[str, str] = {}
        self.client = httpx.Client(base_url=f"http://{addr}", timeout=30.0)

    def send(self, call: cases.Call) -> tuple[str, dict]:
        """(the request as sent, the answer)."""
        path = call.path.format(**self.names)
        headers = dict(call.headers)
        if call.auth == "good":
            headers["OPEN-SANDBOX-API-KEY"] = self.api_key
        elif call.auth == "wrong":
            headers["OPEN-SANDBOX-API-KEY"] = "not-the-key"
        payload = call.body() if call.body else call.json
        try:
            if call.content is not None:
                response = self.client.request(call.method, path, content=call.content, headers=headers)
            elif payload is not None:
                response = self.client.request(call.method, path, json=payload, headers=headers)
            else:
                response = self.client.request(call.method, path, headers=headers)
            answer = answer_of(response)
        except httpx.HTTPError as error:
            answer = {"status": 0, "type": "", "text": f"no answer: {type(error).__name__} {error}"}
        if call.save:
            created = answer.get("json")
            ok = 200 <= answer["status"] < 300 and isinstance(created, dict) and "id" in created
            self.names[call.save] = str(created["id"]) if ok else f"not-created-{call.save}"
        sent = f"{call.method} {path}"
        if call.content is not None:
            sent += f"  body {short(call.content)} {headers.get('Content-Type', '')}"
        elif payload is not None:
            sent += f"  body {short(json.dumps(payload), 200)}"
        return sent, answer

    def wait(self, step: cases.Wait) -> str | None:
        """None once the sandbox is in one of step.states, else what it last was."""
        sid = self.names.get(step.sandbox, "none")
        deadline = time.monotonic() + step.seconds
        last = "no answer"
        while time.monotonic() < deadline:
            try:
                response = self.client.get(f"/v1/sandboxes/{sid}", headers={"OPEN-SANDBOX-API-KEY": self.api_key})
            except httpx.HTTPError as error:
                return f"GET failed: {type(error).__name__}"
            if response.status_code != 200:
                return f"GET answered {response.status_code}"
            last = response.json().get("status", {}).get("state")
            if last in step.states:
                return None
            time.sleep(0.2)
        return f"still {last} after {step.seconds:.0f}s"


class Run:
    def __init__(self, ref: Server, sg: Server):
        self.ref, self.sg = ref, sg
        self.differences: list[Difference] = []
        self.exchanges: dict[str, dict] = {}

    def note(self, case: str, request: str, ref: dict, sg: dict) -> int:
        self.exchanges[case] = {"request": request, "reference": ref, "sandgate": sg}
        found = [Difference(case, path, detail) for path, detail in compare_answers(ref, sg)]
        self.differences += found
        return len(found)

    def call(self, step: cases.Call) -> None:
        ref_sent, ref = self.ref.send(step)
        sg_sent, sg = self.sg.send(step)
        count = self.note(step.name, ref_sent, ref, sg)
        mark = "same" if count == 0 else f"{count} difference(s)"
        print(f"[differential] {step.name}: {ref['status']} / {sg['status']}, {mark}", flush=True)

    def wait(self, step: cases.Wait) -> None:
        for server in (self.ref, self.sg):
            problem = server.wait(step)
            if problem:
                self.differences.append(Difference(step.name, f"wait.{server.name}", problem))
                print(f"[differential] {step.name}: {server.name} {problem}", flush=True)

    def sdk(self) -> None:
        ref_log, ref_outcome = sdk_flow.run(self.ref.addr, self.ref.api_key, [])
        sg_log, sg_outcome = sdk_flow.run(self.sg.addr, self.sg.api_key, [])
        if ref_outcome != sg_outcome:
            detail = f"reference {ref_outcome}, sandgate {sg_outcome}"
            self.differences.append(Difference("sdk: outcome", "outcome", detail))
        print(f"[differential] sdk: reference {ref_outcome}; sandgate {sg_outcome}", flush=True)
        ref_requests = [e["request"] for e in ref_log]
        sg_requests = [e["request"] for e in sg_log]
        if ref_requests != sg_requests:
            detail = f"reference {ref_requests}, sandgate {sg_requests}"
            self.differences.append(Difference("sdk: requests", "sequence", detail))
        sg_by_request = {e["request"]: e["answer"] for e in sg_log}
        for exchange in ref_log:
            request = exchange["request"]
            if request in sg_by_request:
                self.note(f"sdk: {request}", request, exchange["answer"], sg_by_request[request])


def report(run: Run, allow_list: str) -> int:
    entries = load_allow_list(allow_list)
    unexpected = [d for d in run.differences if not allowed_by(d, entries)]
    stale = [e for e in entries if e.used == 0]
    shown = set()
    for diff in unexpected:
        print(f"\nUNEXPECTED  {diff.case}  at {diff.path}: {diff.detail}")
        exchange = run.exchanges.get(diff.case)
        if exchange and diff.case not in shown:
            shown.add(diff.case)
            print(f"  request:   {exchange['request']}")
            for side in ("reference", "sandgate"):
                answer = exchange[side]
                body = answer.get("json", answer["text"])
                print(f"  {side + ':':10} {answer['status']} {answer['type'] or '-'} {short(body, 300)}")
    for entry in stale:
        print(f"\nSTALE ALLOW-LIST ENTRY  case={entry.case!r} path={entry.path!r}: matches no difference any more")
        print(f"  reason was: {entry.reason}")
    allowed = len(run.differences) - len(unexpected)
    print(
        f"\ndifferential: {len(run.exchanges)} exchanges compared, {len(run.differences)} differences "
        f"({allowed} allowed, {len(unexpected)} unexpected), {len(stale)} stale allow-list entries"
    )
    return 1 if unexpected or stale else 0


def main(ref_addr: str, sg_addr: str, api_key: str, allow_list: str, report_json: str) -> int:
    run = Run(Server("reference", ref_addr, api_key), Server("sandgate", sg_addr, api_key))
    started = time.monotonic()
    for step in cases.all_steps():
        if time.monotonic() - started > TIME_LIMIT:
            run.differences.append(Difference("time limit", "run", f"stopped before {step.name!r}"))
            break
        if isinstance(step, cases.Wait):
            run.wait(step)
        else:
            run.call(step)
    run.sdk()
    with open(report_json, "w") as file:
        json.dump({"differences": [d.__dict__ for d in run.differences], "exchanges": run.exchanges}, file, indent=1)
    return report(run, allow_list)


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:6]))
