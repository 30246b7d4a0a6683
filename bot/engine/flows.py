"""Flows are data: YAML files in dialogs/flows, loaded into frozen values and checked.

A flow is a named set of steps. A step may, in this order: run an `action`,
`say` one or more messages, `call` another flow (and come back), `ask` a
question with an `expect`ed input stored in a `slot`, then move on through
`branch` rules or to `next` (a step name, or `end`). `switch` hands the
conversation to another flow for good. See README, "Adding a flow".
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.engine.locales import PLACEHOLDER, Catalogs
from bot.engine.messages import EXPECT_TYPES
from bot.engine.yamlfile import YamlError, line_of, load_yaml

END = "end"
# Condition operators a branch may use; each compares a slot with a value.
OPERATORS = ("equals", "not", "in", "lt", "lte", "gt", "gte", "set", "empty")
STEP_KEYS = {
    "say",
    "ask",
    "expect",
    "slot",
    "choices",
    "optional",
    "action",
    "args",
    "call",
    "switch",
    "branch",
    "next",
    "min",
    "max",
    "min_length",
    "max_length",
    "future",
    "within_days",
    "integer",
    "recap",
    "choices_from",
    "unknown",
    "read",
}
FLOW_KEYS = {"title", "start", "triggers", "steps", "anywhere"}


class FlowError(Exception):
    """Flows that cannot run; `problems` lists each as 'file:line: flow X step Y: ...'."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Choice:
    value: str
    label: str  # a message key
    when: str | None = None  # "suspended": shown only when something can be resumed


@dataclass(frozen=True, slots=True)
class Condition:
    slot: str
    op: str
    value: Any = None

    def holds(self, slots: Mapping[str, Any]) -> bool:
        actual = slots.get(self.slot)
        match self.op:
            case "equals":
                return bool(actual == self.value)
            case "not":
                return bool(actual != self.value)
            case "in":
                return actual in (self.value or ())
            case "set":
                return (actual is not None) == bool(self.value)
            case "empty":
                return (actual in (None, "", [], {})) == bool(self.value)
        if not isinstance(actual, int | float) or isinstance(actual, bool):
            return False
        match self.op:
            case "lt":
                return bool(actual < self.value)
            case "lte":
                return bool(actual <= self.value)
            case "gt":
                return bool(actual > self.value)
            case "gte":
                return bool(actual >= self.value)
        return False


@dataclass(frozen=True, slots=True)
class Branch:
    conditions: tuple[Condition, ...]
    goto: str
    line: int


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    flow: str
    line: int
    say: tuple[str, ...] = ()
    ask: str | None = None
    expect: str = "none"
    slot: str | None = None
    choices: tuple[Choice, ...] = ()
    optional: bool = False
    action: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    call: str | None = None
    switch: str | None = None
    branch: tuple[Branch, ...] = ()
    next: str | None = None
    min: float | None = None
    max: float | None = None
    min_length: int = 1
    max_length: int = 500
    future: bool = True
    within_days: int | None = None
    integer: bool = False
    recap: str | None = None  # message key: one line that says where we were
    # A slot an action filled with [{"value", "label"}] (labels already in words):
    # choices that depend on the person, such as their goals.
    choices_from: str | None = None
    # Where "I don't know" goes (a step); without it an optional step is skipped and
    # any other gets an encouraging nudge.
    unknown: str | None = None
    # A reader (ActionRegistry.reader) for typed answers to a choice that no label
    # matches: words and emoji beyond the labels ("love it", "más o menos").
    read: str | None = None


@dataclass(frozen=True, slots=True)
class Flow:
    name: str
    title: str  # message key
    start: str
    steps: Mapping[str, Step]
    triggers: tuple[str, ...]
    file: Path
    line: int
    # Its triggers work at any step, even mid-answer (help, menu).
    anywhere: bool = False


@dataclass(frozen=True, slots=True)
class FlowSet:
    flows: Mapping[str, Flow]

    def step(self, flow: str, step: str) -> Step:
        return self.flows[flow].steps[step]

    def trigger_map(self) -> dict[str, str]:
        """Intent or /command → the flow it starts."""
        return {t: f.name for f in self.flows.values() for t in f.triggers}


def load_flows(folder: Path) -> FlowSet:
    """Parse every dialogs/flows/*.yaml; structural problems raise FlowError."""
    if not folder.is_dir():
        raise FlowError([f"{folder}: the flows folder does not exist"])
    problems: list[str] = []
    flows: dict[str, Flow] = {}
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise FlowError([f"{folder}: no flow files (*.yaml)"])
    for path in files:
        try:
            data = load_yaml(path)
        except YamlError as exc:
            problems.append(str(exc))
            continue
        if not isinstance(data, dict) or not isinstance(data.get("flows"), dict):
            problems.append(f"{path}:1: a flow file is a mapping with a 'flows' key")
            continue
        flow_lines = getattr(data["flows"], "key_lines", {})
        for name, raw in data["flows"].items():
            line = flow_lines.get(name, line_of(raw))
            where = f"{path}:{line}: flow {name}"
            if name in flows:
                problems.append(f"{where}: defined twice (also in {flows[name].file})")
                continue
            flow = _parse_flow(name, raw, path, line, problems)
            if flow is not None:
                flows[name] = flow
    if problems:
        raise FlowError(problems)
    return FlowSet(flows)


def _parse_flow(name: str, raw: Any, path: Path, line: int, problems: list[str]) -> Flow | None:
    where = f"{path}:{line}: flow {name}"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    for key in sorted(set(raw) - FLOW_KEYS):
        problems.append(f"{where}: unknown key {key!r}")
    raw_steps = raw.get("steps")
    if not isinstance(raw_steps, dict) or not raw_steps:
        problems.append(f"{where}: needs 'steps'")
        return None
    steps: dict[str, Step] = {}
    step_lines = getattr(raw_steps, "key_lines", {})
    for step_name, raw_step in raw_steps.items():
        step_line = step_lines.get(step_name, line_of(raw_step))
        step = _parse_step(name, str(step_name), raw_step, path, step_line, problems)
        if step is not None:
            steps[step.name] = step
    triggers = raw.get("triggers") or []
    if not isinstance(triggers, list):
        problems.append(f"{where}: 'triggers' is a list of intents or /commands")
        triggers = []
    return Flow(
        name=name,
        title=str(raw.get("title", f"{name}.title")),
        start=str(raw.get("start", next(iter(raw_steps)))),
        steps=steps,
        triggers=tuple(str(t) for t in triggers),
        file=path,
        line=line,
        anywhere=bool(raw.get("anywhere", False)),
    )


def _parse_step(
    flow: str, name: str, raw: Any, path: Path, line: int, problems: list[str]
) -> Step | None:
    where = f"{path}:{line}: flow {flow} step {name}"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    for key in sorted(set(raw) - STEP_KEYS):
        problems.append(f"{where}: unknown key {key!r}")
    say = raw.get("say", ())
    say = (say,) if isinstance(say, str) else tuple(str(s) for s in say or ())
    expect = str(raw.get("expect", "text" if "ask" in raw else "none"))
    if expect not in EXPECT_TYPES:
        problems.append(f"{where}: expect {expect!r} is not one of {', '.join(EXPECT_TYPES)}")
    if "ask" in raw and not raw.get("slot"):
        problems.append(f"{where}: an 'ask' step needs a 'slot' to store the answer")
    choices: list[Choice] = []
    for item in raw.get("choices") or ():
        if not isinstance(item, dict) or "value" not in item or "label" not in item:
            problems.append(f"{where}: each choice needs 'value' and 'label'")
            continue
        choices.append(Choice(str(item["value"]), str(item["label"]), item.get("when")))
    if expect == "choice" and not choices and not raw.get("choices_from"):
        problems.append(f"{where}: expect choice needs 'choices' or 'choices_from'")
    branches: list[Branch] = []
    for item in raw.get("branch") or ():
        branch = _parse_branch(item, where, path, problems)
        if branch is not None:
            branches.append(branch)
    args = raw.get("args") or {}
    if not isinstance(args, dict):
        problems.append(f"{where}: 'args' must be a mapping")
        args = {}
    try:
        return Step(
            name=name,
            flow=flow,
            line=line,
            say=say,
            ask=raw.get("ask"),
            expect=expect,
            slot=raw.get("slot"),
            choices=tuple(choices),
            optional=bool(raw.get("optional", False)),
            action=raw.get("action"),
            args=dict(args),
            call=raw.get("call"),
            switch=raw.get("switch"),
            branch=tuple(branches),
            next=None if raw.get("next") is None else str(raw.get("next")),
            min=_number(raw.get("min")),
            max=_number(raw.get("max")),
            min_length=int(raw.get("min_length", 1)),
            max_length=int(raw.get("max_length", 500)),
            future=bool(raw.get("future", True)),
            within_days=None if raw.get("within_days") is None else int(raw["within_days"]),
            integer=bool(raw.get("integer", False)),
            recap=raw.get("recap"),
            choices_from=raw.get("choices_from"),
            unknown=raw.get("unknown"),
            read=raw.get("read"),
        )
    except (TypeError, ValueError) as exc:
        problems.append(f"{where}: {exc}")
        return None


def _number(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    return float(value)


def _parse_branch(item: Any, where: str, path: Path, problems: list[str]) -> Branch | None:
    line = line_of(item)
    if not isinstance(item, dict) or "goto" not in item or "if" not in item:
        problems.append(f"{where}: each branch needs 'if' and 'goto' (line {line})")
        return None
    raw_conditions = item["if"]
    raw_conditions = raw_conditions if isinstance(raw_conditions, list) else [raw_conditions]
    conditions: list[Condition] = []
    for raw in raw_conditions:
        if not isinstance(raw, dict) or "slot" not in raw:
            problems.append(f"{path}:{line}: {where.split(': ', 1)[1]}: a condition needs 'slot'")
            continue
        ops = [k for k in raw if k != "slot"]
        if len(ops) != 1 or ops[0] not in OPERATORS:
            problems.append(
                f"{path}:{line}: {where.split(': ', 1)[1]}: a condition needs exactly one of "
                f"{', '.join(OPERATORS)}"
            )
            continue
        conditions.append(Condition(str(raw["slot"]), ops[0], raw[ops[0]]))
    return Branch(tuple(conditions), str(item["goto"]), line)


# Values the engine supplies to every message, whatever the flow: see runtime.params.
BUILTIN_PARAMS = frozenset({"name", "title", "expected", "date", "count", "min", "max", "question"})


def check_flows(
    flows: FlowSet,
    catalogs: Catalogs,
    actions: Collection[str],
    intents: Collection[str],
    action_slots: Mapping[str, Collection[str]] | None = None,
    readers: Collection[str] = (),
) -> list[str]:
    """Every reference a flow makes must resolve: steps, flows, actions, keys, slots, intents."""
    problems: list[str] = []
    declared: set[str] = set()
    for names in (action_slots or {}).values():
        declared.update(names)
    for flow in flows.flows.values():
        for step in flow.steps.values():
            if step.slot:
                declared.add(step.slot)

    def key_ok(key: str, where: str) -> None:
        if not catalogs.has(key):
            missing = [c for c in catalogs.locales if not catalogs.has(key, c)]
            problems.append(
                f"{where}: unknown message key {key!r} (missing in {', '.join(missing)})"
            )
            return
        for name in catalogs.entries["en"][key].placeholders():
            if name not in declared and name not in BUILTIN_PARAMS:
                problems.append(f"{where}: message {key!r} uses unknown slot {{{name}}}")

    for flow in flows.flows.values():
        fwhere = f"{flow.file}:{flow.line}: flow {flow.name}"
        key_ok(flow.title, fwhere)
        if flow.start not in flow.steps:
            problems.append(f"{fwhere}: start step {flow.start!r} does not exist")
        for trigger in flow.triggers:
            if not trigger.startswith("/") and trigger not in intents:
                problems.append(f"{fwhere}: trigger {trigger!r} is not a known intent")
        for step in flow.steps.values():
            where = f"{flow.file}:{step.line}: flow {flow.name} step {step.name}"
            for key in step.say:
                key_ok(key, where)
            if step.ask:
                key_ok(step.ask, where)
            if step.recap:
                key_ok(step.recap, where)
            for choice in step.choices:
                key_ok(choice.label, where)
            if step.action and step.action not in actions:
                problems.append(f"{where}: unknown action {step.action!r}")
            if step.read and step.read not in readers:
                problems.append(f"{where}: unknown reader {step.read!r}")
            if step.read and step.expect != "choice":
                problems.append(f"{where}: 'read' works only with expect choice")
            for target in (step.call, step.switch):
                if target and target not in flows.flows:
                    problems.append(f"{where}: unknown flow {target!r}")
            targets = [b.goto for b in step.branch]
            if step.next:
                targets.append(step.next)
            if step.unknown:
                targets.append(step.unknown)
            if step.choices_from and step.choices_from not in declared:
                problems.append(f"{where}: unknown slot {step.choices_from!r} in choices_from")
            for target in targets:
                if target != END and target not in flow.steps:
                    problems.append(f"{where}: unknown step {target!r}")
            for branch in step.branch:
                for cond in branch.conditions:
                    if cond.slot not in declared:
                        problems.append(
                            f"{flow.file}:{branch.line}: flow {flow.name} step {step.name}: "
                            f"unknown slot {cond.slot!r}"
                        )
            if not step.next and not step.switch:
                problems.append(
                    f"{where}: needs 'next' (a step, or end) for when no branch applies"
                )
    return problems


def placeholders_in(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))
