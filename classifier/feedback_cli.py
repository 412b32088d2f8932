"""``streamtriage feedback ...``: confirm a label, mark it wrong with the right entry, mute an entry for a service.

Talks to the running ``streamtriage serve`` (its API) when there is one, else writes to the store
directly and re-labels there (``classifier/feedback.py`` either way).
"""
from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import typer

GROUP = "feedback"
app = typer.Typer(help="Say when a label is right or wrong, or mute an entry for a service.", no_args_is_help=True)

_STORE = typer.Option(None, "--store", help="chdb://DIR or http(s)://... (default as `serve`).")
_CONFIG = typer.Option(None, "--config", help="Settings file, as for `serve`.")
_KB_DIR = typer.Option(None, "--kb-dir", help="User knowledge-base directory, as for `serve` (direct store access).")
_AUTHOR = typer.Option("", "--author", help="Who says so (kept with the feedback).")
_NOTE = typer.Option("", "--note", help="Why (kept with the feedback, shown in the label's evidence).")
_SPAN = typer.Option(None, "--span", help="Which call, when the trace holds several.")


def _request(url: str, token: str | None, method: str, path: str, body: dict[str, Any] | None) -> Any:
    req = urllib.request.Request(url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        try:
            detail = json.loads(err.read()).get("detail")
        except ValueError:
            detail = ""
        raise RuntimeError(f"{url}{path}: HTTP {err.code}: {detail}") from None
    except urllib.error.URLError as err:
        raise RuntimeError(f"service at {url} is not answering: {err.reason}") from None


def _run(store: str | None, config: str | None, kb_dir: str | None, method: str, path: str,
         body: dict[str, Any] | None, direct: Any) -> None:
    """Send to the running service, or call ``direct(classifier)`` on the store; print the JSON answer."""
    from streamtriage.classifier.feedback import FeedbackError
    from streamtriage.classifier.kb import KbError
    from streamtriage.collector.locate import ServiceError, locate
    from streamtriage.collector.settings import SettingsError, load_settings

    try:
        settings = load_settings(config, store=store, kb_dir=kb_dir)
        with locate(settings) as where:
            if where.url:
                out = _request(where.url, settings.reader_token, method, path, body)
            else:
                out = direct(_direct_classifier(where.store, settings))
    except (SettingsError, KbError, FeedbackError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(2) from None
    except (LookupError, ServiceError, RuntimeError, OSError) as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(out, default=str, ensure_ascii=False, indent=2))


def _shape(model: Any, raw: Any) -> Any:
    """A direct answer in the same JSON shape as the service's (``collector/api_models.py``)."""
    return model(raw).model_dump(mode="json")


def _direct_classifier(store: Any, settings: Any) -> Any:
    from streamtriage.classifier.service import Classifier
    from streamtriage.classifier.thresholds import Thresholds
    from streamtriage.classifier.user_kb import load_with_user

    return Classifier(store.open_client(), store.database, kb=load_with_user(settings.kb_dir),
                      thresholds=Thresholds.from_env(flags=settings.thresholds))


def _verdict(trace_id: str, verdict: str, right: str | None, span: str | None, author: str, note: str,
             store: str | None, config: str | None, kb_dir: str | None) -> None:
    from streamtriage.classifier.feedback import give_verdict
    from streamtriage.collector.api_models import VerdictResult

    tid = trace_id.lower()
    body = {"verdict": verdict, "right_kb_id": right, "span_id": span, "author": author, "note": note}
    _run(store, config, kb_dir, "POST", f"/api/labels/{urllib.parse.quote(tid)}/feedback", body,
         lambda clf: _shape(VerdictResult.from_raw, give_verdict(clf, tid, verdict, right, span, author, note)))


@app.command("confirm")
def confirm(trace_id: str = typer.Argument(..., help="The call's trace id (32 hex characters)."),
            span: str | None = _SPAN, author: str = _AUTHOR, note: str = _NOTE,
            store: str | None = _STORE, config: str | None = _CONFIG, kb_dir: str | None = _KB_DIR) -> None:
    """The label is right (counts toward the entry's precision)."""
    _verdict(trace_id, "confirm", None, span, author, note, store, config, kb_dir)


@app.command("wrong")
def wrong(trace_id: str = typer.Argument(..., help="The call's trace id (32 hex characters)."),
          right: str = typer.Option(..., "--right", help="The entry that applies (llm/...), or 'none': no incident."),
          span: str | None = _SPAN, author: str = _AUTHOR, note: str = _NOTE,
          store: str | None = _STORE, config: str | None = _CONFIG, kb_dir: str | None = _KB_DIR) -> None:
    """The label is wrong: the call is labelled with the right entry from now on."""
    _verdict(trace_id, "wrong", right, span, author, note, store, config, kb_dir)


@app.command("clear")
def clear(trace_id: str = typer.Argument(..., help="The call's trace id."), span: str | None = _SPAN,
          store: str | None = _STORE, config: str | None = _CONFIG, kb_dir: str | None = _KB_DIR) -> None:
    """Withdraw the verdict on a call: the rules' label applies again."""
    _verdict(trace_id, "clear", None, span, "", "", store, config, kb_dir)


@app.command("mute")
def mute(service: str = typer.Option(..., "--service", help="Service name (service.name)."),
         entry: str = typer.Option(..., "--entry", help="Knowledge-base id to mute for it."),
         undo: bool = typer.Option(False, "--undo", help="Unmute instead."),
         author: str = _AUTHOR, note: str = _NOTE,
         store: str | None = _STORE, config: str | None = _CONFIG, kb_dir: str | None = _KB_DIR) -> None:
    """Hide an entry's incidents for one service (labels are kept, marked muted)."""
    from streamtriage.classifier.feedback import set_mute
    from streamtriage.collector.api_models import MuteResult

    if undo:
        query = urllib.parse.urlencode({"service": service, "kb_id": entry})
        _run(store, config, kb_dir, "DELETE", f"/api/mutes?{query}", None,
             lambda clf: _shape(MuteResult.model_validate, set_mute(clf, service, entry, False)))
    else:
        _run(store, config, kb_dir, "POST", "/api/mutes", {"service": service, "kb_id": entry, "author": author,
                                                           "note": note},
             lambda clf: _shape(MuteResult.model_validate, set_mute(clf, service, entry, True, author, note)))


@app.command("list")
def list_feedback(store: str | None = _STORE, config: str | None = _CONFIG, kb_dir: str | None = _KB_DIR) -> None:
    """Verdicts and mutes in force, and the precision per entry."""
    from streamtriage.classifier.feedback import summary
    from streamtriage.collector.api_models import FeedbackSummary

    _run(store, config, kb_dir, "GET", "/api/feedback", None,
         lambda clf: _shape(FeedbackSummary.model_validate, summary(clf)))
