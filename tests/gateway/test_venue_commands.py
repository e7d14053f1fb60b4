"""cx schema, cx keys new and cx serve --demo (the simulation), in-process."""

from __future__ import annotations

import json

import pytest

from gateway import protocol
from gateway.cli import main
from gateway.config import DEFAULT_FIRMS, ConfigError, load_config
from gateway.venue import SCHEMA_PATH
from tests.schema_contract import contract


def test_committed_schema_means_what_the_protocol_module_says():
    assert contract(json.loads(SCHEMA_PATH.read_text())) == contract(json.loads(json.dumps(protocol.json_schema())))


def test_schema_contract_sees_a_protocol_change_but_not_prose():
    schema = json.loads(json.dumps(protocol.json_schema()))
    reworded = json.loads(json.dumps(schema))
    reworded["$defs"]["NewOrder"]["description"] = "other words"
    reworded["$defs"]["NewOrder"]["required"].reverse()
    assert contract(reworded) == contract(schema)
    retyped = json.loads(json.dumps(schema))
    retyped["$defs"]["NewOrder"]["properties"]["qty"]["type"] = "string"
    assert contract(retyped) != contract(schema)
    renamed = json.loads(json.dumps(schema))
    renamed["$defs"]["Side"]["x-enum-varnames"] = ["BID", "ASK"]
    assert contract(renamed) != contract(schema)


def test_schema_names_every_message_of_both_directions(tmp_path):
    out = tmp_path / "s.json"
    assert main(["schema", "--out", str(out)]) == 0
    defs = json.loads(out.read_text())["$defs"]
    for cls in (*protocol.ClientMessage.__args__, *protocol.ServerMessage.__args__):
        assert cls.__name__ in defs


def test_keys_written_by_cx_keys_new_configure_a_curve_gateway(tmp_path, capsys):
    keys = tmp_path / "keys"
    assert main(["keys", "new", "gateway", "--dir", str(keys)]) == 0
    assert main(["keys", "new", "ALPHA", "--dir", str(keys)]) == 0
    assert 'name = "ALPHA"' in capsys.readouterr().out
    cfg_file = tmp_path / "gw.toml"
    cfg_file.write_text(f'[gateway]\norder_entry = "tcp://127.0.0.1:*"\nadmin = "tcp://127.0.0.1:*"\n'
                        f'server_secret_key_file = "{keys / "gateway.key_secret"}"\n'
                        f'[[firms]]\nname = "ALPHA"\npublic_key_file = "{keys / "ALPHA.key"}"\n')
    cfg = load_config(cfg_file)
    assert not cfg.plaintext and len(cfg.firms[0].public_key) == 40 and len(cfg.server_secret_key) == 40


def test_plain_text_off_loopback_is_refused_naming_the_field(tmp_path):
    cfg_file = tmp_path / "gw.toml"
    cfg_file.write_text('[gateway]\norder_entry = "tcp://0.0.0.0:5555"\nplaintext = true\n[[firms]]\nname = "A"\n')
    try:
        load_config(cfg_file)
    except ConfigError as exc:
        assert "plaintext" in str(exc)
    else:
        raise AssertionError("plain text on 0.0.0.0 was accepted")


def test_serve_with_demo_traders_prints_trades_and_stops_by_itself(capsys, tmp_path):
    """``--demo`` is the alias of ``--simulate``: the participants of ``cx simulate`` trade, then stop cleanly."""
    cfg_file = tmp_path / "gw.toml"
    cfg_file.write_text('[gateway]\norder_entry = "tcp://127.0.0.1:*"\nadmin = "tcp://127.0.0.1:*"\n'
                        'market_data = "tcp://127.0.0.1:*"\nsnapshots = "tcp://127.0.0.1:*"\n'
                        'plaintext = true\n' + "".join(f'[[firms]]\nname = "{f}"\n' for f in DEFAULT_FIRMS))
    assert main(["serve", "--config", str(cfg_file), "--demo", "--duration", "4"]) == 0
    out = capsys.readouterr().out
    assert "order entry on tcp://127.0.0.1:" in out and "firms trading through" in out and "stopped" in out
    summary = out[out.index("cx simulate: ", out.index("firms trading through")):]
    fills = int(summary.split(" fills;")[0].rsplit(" ", 1)[1])
    summary = out[out.index("cx serve: stopped after "):]
    assert fills > 0 and "\n  trades " in summary and "\n  GPU-h traded " in summary and "{" not in summary


def test_readme_message_tables_equal_the_protocol_module():
    from gateway.protocol_tables import README, readme_block, tables

    assert readme_block(README.read_text()) == tables()


def test_serve_with_a_bad_listing_is_one_line_naming_the_error_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "BAD.toml"
    bad.write_text("listing = [")
    assert main(["serve", "--listing", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"cx serve: ListingError: {bad}: ") and "\n" not in err and "Traceback" not in err


def test_serve_on_a_corrupt_journal_is_one_line_naming_file_and_offset_and_exit_2(tmp_path, capsys):
    cfg_file = tmp_path / "gw.toml"
    cfg_file.write_text('[gateway]\norder_entry = "tcp://127.0.0.1:*"\nadmin = "tcp://127.0.0.1:*"\n'
                        'market_data = "tcp://127.0.0.1:*"\nsnapshots = "tcp://127.0.0.1:*"\n'
                        'plaintext = true\n' + "".join(f'[[firms]]\nname = "{f}"\n' for f in DEFAULT_FIRMS))
    journal = tmp_path / "journal"
    assert main(["serve", "--config", str(cfg_file), "--journal", str(journal), "--simulate", "--duration", "2"]) == 0
    segment = sorted(journal.glob("*.seg"))[0]
    data = bytearray(segment.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside a complete record, not at the tail
    segment.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["serve", "--config", str(cfg_file), "--journal", str(journal)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"cx serve: JournalCorruptError: {segment}: corrupt journal record at offset ")
    assert "\n" not in err and "nothing was modified" in err


def test_serve_on_a_port_in_use_is_one_line_and_exit_2(tmp_path, capsys):
    import zmq

    with zmq.Context() as ctx:
        taken = ctx.socket(zmq.PUB)
        port = taken.bind_to_random_port("tcp://127.0.0.1")
        cfg_file = tmp_path / "gw.toml"
        cfg_file.write_text(f'[gateway]\norder_entry = "tcp://127.0.0.1:*"\nadmin = "tcp://127.0.0.1:*"\n'
                            f'market_data = "tcp://127.0.0.1:{port}"\nsnapshots = "tcp://127.0.0.1:*"\n'
                            'plaintext = true\n[[firms]]\nname = "A"\n')
        assert main(["serve", "--config", str(cfg_file)]) == 2
        taken.close(linger=0)
    err = capsys.readouterr().err.strip()
    assert err.startswith("cx serve: ZMQError: Address already in use") and "\n" not in err


def test_a_key_shared_by_two_firms_or_not_a_curve_key_is_refused_naming_the_firms(tmp_path):
    keys = tmp_path / "keys"
    assert main(["keys", "new", "gateway", "--dir", str(keys)]) == 0
    assert main(["keys", "new", "ALPHA", "--dir", str(keys)]) == 0
    head = f'[gateway]\norder_entry = "tcp://127.0.0.1:*"\nserver_secret_key_file = "{keys / "gateway.key_secret"}"\n'
    shared = tmp_path / "shared.toml"
    shared.write_text(head + f'[[firms]]\nname = "ALPHA"\npublic_key_file = "{keys / "ALPHA.key"}"\n'
                             f'[[firms]]\nname = "BETA"\npublic_key_file = "{keys / "ALPHA.key"}"\n')
    with pytest.raises(ConfigError, match=r"firms\[1\]\.public_key: the key of 'BETA' is also 'ALPHA''s"):
        load_config(shared)
    for bad in ("#" * 40, "~" * 40, "short"):
        cfg = tmp_path / "bad.toml"
        cfg.write_text(head + f'[[firms]]\nname = "ALPHA"\npublic_key = "{bad}"\n')
        with pytest.raises(ConfigError, match=r"firms\[0\]\.public_key"):
            load_config(cfg)
    server = tmp_path / "server.toml"
    server.write_text(head + f'[[firms]]\nname = "ALPHA"\npublic_key_file = "{keys / "gateway.key"}"\n')
    with pytest.raises(ConfigError, match="the gateway's public key is also 'ALPHA''s"):
        load_config(server)


def test_a_failed_gateway_loop_stops_the_venue_with_its_cause_printed_last_and_exit_1(tmp_path, capsys, monkeypatch):
    """The journal becomes unwritable under load: the venue stops; close() fails too, briefly; the cause is last."""
    from journal.log import JournalWriter

    appends = {"n": 0}
    original = JournalWriter.append_start

    def failing_append_start(self, *args, **kw):
        appends["n"] += 1
        if appends["n"] > 20:
            raise OSError(28, "No space left on device")
        return original(self, *args, **kw)

    def failing_close(self):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(JournalWriter, "append_start", failing_append_start)
    monkeypatch.setattr(JournalWriter, "append", lambda self, *a, **kw: failing_append_start(self, *a, **kw))
    cfg_file = tmp_path / "gw.toml"
    cfg_file.write_text('[gateway]\norder_entry = "tcp://127.0.0.1:*"\nadmin = "tcp://127.0.0.1:*"\n'
                        'market_data = "tcp://127.0.0.1:*"\nsnapshots = "tcp://127.0.0.1:*"\n'
                        'plaintext = true\n' + "".join(f'[[firms]]\nname = "{f}"\n' for f in DEFAULT_FIRMS))
    from journal.sequencer import JournaledExchange

    monkeypatch.setattr(JournaledExchange, "close", failing_close)
    code = main(["serve", "--config", str(cfg_file), "--journal", str(tmp_path / "j"), "--simulate",
                 "--duration", "30"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1] == "cx serve: the gateway failed, the venue stopped: OSError: [Errno 28] No space left on device"
    assert "cx serve: while stopping: OSError: [Errno 5] Input/output error" in err
