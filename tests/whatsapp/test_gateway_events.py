"""neonize events → wa_sessions facts, fed with real neonize protobuf event objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from neonize import events as nev
from neonize.proto import Neonize_pb2

from fibernode.models import WaSessionStatus
from fibernode.whatsapp.base import ErrorKind
from fibernode.whatsapp.gateway.events import (
    LOGGED_OUT_ERROR,
    PairCodeIssued,
    QrIssued,
    classify_send_error,
    is_drop,
    is_terminal,
    map_event,
    map_receipt,
)

NOW = datetime(2025, 3, 10, 3, 0, tzinfo=UTC)


def test_connected_event_carries_the_linked_number_and_clears_the_link():
    ev = map_event(nev.ConnectedEv(status=True), now=NOW, phone="6281234567890")
    assert ev.status == WaSessionStatus.CONNECTED
    assert ev.phone_number == "6281234567890"
    assert ev.clear_link and ev.link_expired is False and ev.error == ""


def test_pair_success_takes_the_number_from_the_jid():
    ok = nev.PairStatusEv(ID=Neonize_pb2.JID(User="6285711112222", Server="s.whatsapp.net"),
                          Status=nev.PairStatusEv.SUCCESS)
    ev = map_event(ok, now=NOW)
    # Paired is not connected: whatsmeow reconnects first, then sends Connected.
    assert ev.status == WaSessionStatus.CONNECTING and ev.phone_number == "6285711112222"
    assert ev.clear_link and ev.error == ""
    failed = map_event(nev.PairStatusEv(Status=nev.PairStatusEv.ERROR, Error="bad code"), now=NOW)
    assert failed.status == WaSessionStatus.DISCONNECTED and "bad code" in failed.error


def test_logged_out_is_terminal_and_needs_a_rescan():
    raw = nev.LoggedOutEv(OnConnect=True, Reason=Neonize_pb2.ConnectFailureReason.LOGGED_OUT)
    ev = map_event(raw, now=NOW)
    assert ev.status == WaSessionStatus.LOGGED_OUT and ev.error == LOGGED_OUT_ERROR
    assert is_terminal(raw)


def test_temporary_ban_has_its_expiry_and_reason():
    raw = nev.TemporaryBanEv(Code=nev.TemporaryBanEv.SEND_TO_TOO_MANY_PEOPLE, Expire=7200)
    ev = map_event(raw, now=NOW)
    assert ev.status == WaSessionStatus.BANNED
    assert ev.banned_until == NOW + timedelta(hours=2)
    assert "terlalu banyak orang" in ev.error and "12:00 WIB" in ev.error  # 05:00 UTC
    assert is_terminal(raw)


def test_outdated_client_and_replaced_stream_are_terminal():
    assert map_event(nev.ClientOutdatedEv(), now=NOW).status == WaSessionStatus.OUTDATED
    assert is_terminal(nev.ClientOutdatedEv())
    replaced = map_event(nev.StreamReplacedEv(), now=NOW)
    assert replaced.status == WaSessionStatus.DISCONNECTED and is_terminal(nev.StreamReplacedEv())


def test_disconnect_is_a_drop_worth_reconnecting():
    ev = map_event(nev.DisconnectedEv(), now=NOW)
    assert ev.status == WaSessionStatus.DISCONNECTED
    assert is_drop(nev.DisconnectedEv()) and not is_terminal(nev.DisconnectedEv())


def test_connect_failure_reasons():
    reason = Neonize_pb2.ConnectFailureReason
    assert map_event(nev.ConnectFailureEv(Reason=reason.MAIN_DEVICE_GONE)).status \
        == WaSessionStatus.LOGGED_OUT
    assert map_event(nev.ConnectFailureEv(Reason=reason.TEMP_BANNED)).status \
        == WaSessionStatus.BANNED
    assert map_event(nev.ConnectFailureEv(Reason=reason.CLIENT_OUTDATED)).status \
        == WaSessionStatus.OUTDATED
    generic = nev.ConnectFailureEv(Reason=reason.SERVICE_UNAVAILABLE, Message="503")
    assert map_event(generic).status == WaSessionStatus.DISCONNECTED
    assert is_drop(generic) and not is_terminal(generic)


def test_qr_and_pairing_code_are_offered_with_their_expiry():
    until = NOW + timedelta(seconds=20)
    qr = map_event(QrIssued("2@abc", until), now=NOW)
    assert (qr.status, qr.qr_code, qr.link_method, qr.link_expires_at) == (
        WaSessionStatus.CONNECTING, "2@abc", "qr", until)
    assert map_event(nev.QREv(Codes=["2@x", "2@y"]), now=NOW).qr_code == "2@x"
    code = map_event(PairCodeIssued("ABCD-EFGH", until), now=NOW)
    assert (code.pairing_code, code.link_method) == ("ABCD-EFGH", "code")


def test_keepalive_only_touches_the_error():
    ev = map_event(nev.KeepAliveTimeoutEv(ErrorCount=2), now=NOW)
    assert ev.status is None and ev.error
    assert map_event(nev.KeepAliveRestoredEv(), now=NOW).error == ""
    assert map_event(nev.MessageEv(), now=NOW) is None


def test_receipts_delivered_and_read():
    raw = nev.ReceiptEv(MessageIDs=["3EB0A", "3EB0B"], Timestamp=1741575600,
                        Type=nev.ReceiptEv.READ)
    receipt = map_receipt(raw)
    assert receipt.kind == "read" and receipt.message_ids == ("3EB0A", "3EB0B")
    assert receipt.at == datetime(2025, 3, 10, 3, 0, tzinfo=UTC)
    assert map_receipt(nev.ReceiptEv(MessageIDs=["x"], Type=nev.ReceiptEv.DELIVERED)).kind \
        == "delivered"
    assert map_receipt(nev.ReceiptEv(MessageIDs=["x"], Type=nev.ReceiptEv.SENDER)) is None


def test_send_errors_are_classified():
    assert classify_send_error("server returned error 463") == ErrorKind.RESTRICTED
    assert classify_send_error("reach-out timelock active") == ErrorKind.RESTRICTED
    assert classify_send_error("websocket not connected") == ErrorKind.NOT_CONNECTED
    assert classify_send_error("timed out waiting for message send response") \
        == ErrorKind.UNCERTAIN
    assert classify_send_error("something odd for 6281246300000") == ErrorKind.TRANSIENT


def test_whatsmeows_exact_error_texts_are_classified():
    # errors.go / send.go / request.go, as neonize passes them on.
    assert classify_send_error("server returned error 463") == ErrorKind.RESTRICTED
    assert classify_send_error("websocket disconnected before message send returned response") \
        == ErrorKind.UNCERTAIN
    assert classify_send_error("websocket disconnected before message send (retry) returned "
                               "response") == ErrorKind.UNCERTAIN
    assert classify_send_error("timed out waiting for message send response") \
        == ErrorKind.UNCERTAIN
    # An info query (device list, prekeys) runs before the message frame: nothing went out.
    assert classify_send_error("info query timed out") == ErrorKind.TRANSIENT
    assert classify_send_error("websocket disconnected before info query returned response") \
        == ErrorKind.TRANSIENT
    assert classify_send_error("websocket not connected") == ErrorKind.NOT_CONNECTED
    assert classify_send_error("the store doesn't contain a device JID") \
        == ErrorKind.NOT_CONNECTED


def test_a_receipt_without_a_type_or_with_an_unknown_one_is_not_delivered():
    # proto2 reads an unset Type as DELIVERED; an enum value this neonize lacks parses
    # as unset too (field 4 = 99 on the wire).
    assert map_receipt(nev.ReceiptEv(MessageIDs=["3EB0A"], Timestamp=1741575600)) is None
    unknown = nev.ReceiptEv()
    unknown.ParseFromString(nev.ReceiptEv(MessageIDs=["3EB0A"]).SerializePartialToString()
                            + bytes([0x20, 99]))
    assert unknown.Type == nev.ReceiptEv.DELIVERED  # what the old code trusted
    assert map_receipt(unknown) is None


def test_a_ban_without_a_known_code_is_not_blamed_on_sending_to_too_many_people():
    unset = map_event(nev.TemporaryBanEv(Expire=3600), now=NOW)
    unknown_ev = nev.TemporaryBanEv()
    unknown_ev.ParseFromString(bytes([0x08, 42]))  # Code 42: unknown to neonize
    unknown = map_event(unknown_ev, now=NOW)
    for ev in (unset, unknown):
        assert ev.status == WaSessionStatus.BANNED
        assert "alasan tidak diketahui" in ev.error
        assert "terlalu banyak orang" not in ev.error
    assert unset.banned_until == NOW + timedelta(hours=1)
