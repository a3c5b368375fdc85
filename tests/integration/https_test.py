"""HTTPS on the OpenAI HTTP port (g4-coordinator --tls-cert/--tls-key, docs/security.md) against
a running cluster: the official `openai` client verifying the server against the test CA gets a
chat completion and a streamed one; Python's ssl/http.client works (TLS 1.2+, ALPN http/1.1);
a plaintext request gets a clean 400 and the server keeps serving; clients that connect and send
nothing, or half a ClientHello, do not hold anyone up and are closed at the head deadline; a
renewed certificate written over the files is presented to new connections after a refresh
interval while an open connection keeps its own.

Run by python_clients_test (ctest: PythonClientsOverHttpsTest), which starts the cluster with
--tls-cert DIR/server.crt --tls-key DIR/server.key --tls-refresh-interval G4_TLS_REFRESH_S and sets
G4_HTTP_URL (https://localhost:PORT), G4_TLS_DIR (DIR, with the CA ca.crt / ca.key).
"""
import http.client
import os
import socket
import ssl
import subprocess
import time
import urllib.parse

import openai
import pytest

BASE = os.environ["G4_HTTP_URL"]
DIR = os.environ["G4_TLS_DIR"]
CA = os.path.join(DIR, "ca.crt")
REFRESH_S = float(os.environ["G4_TLS_REFRESH_S"])
PORT = urllib.parse.urlparse(BASE).port
MODEL = os.environ.get("G4_MODEL", "dense")
HEAD_DEADLINE_S = 10  # EventHttpServerOptions::header_timeout


def tls_context():
    ctx = ssl.create_default_context(cafile=CA)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


def https_connection():
    return http.client.HTTPSConnection("localhost", PORT, context=tls_context(), timeout=30)


def serial_of(conn):
    return conn.sock.getpeercert()["serialNumber"]


def get_models(conn):
    conn.request("GET", "/v1/models")
    r = conn.getresponse()
    body = r.read()
    assert r.status == 200, body
    return body


@pytest.fixture(scope="module")
def client():
    return openai.OpenAI(base_url=BASE + "/v1", api_key="none", timeout=60, max_retries=0,
                         http_client=openai.DefaultHttpxClient(verify=tls_context()))


def test_openai_client_over_https(client):
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                       max_tokens=4, temperature=0)
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.completion_tokens <= 4
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=6, stream=True,
        stream_options={"include_usage": True}, extra_body={"ignore_eos": True}))
    assert chunks[-1].usage.completion_tokens == 6
    finishes = [c.choices[0].finish_reason for c in chunks[:-1] if c.choices[0].finish_reason]
    assert finishes == ["length"]


def test_an_unverified_server_is_refused():
    with pytest.raises(ssl.SSLCertVerificationError):
        conn = http.client.HTTPSConnection("localhost", PORT, timeout=30,
                                           context=ssl.create_default_context())  # system CAs
        conn.request("GET", "/health")


def test_python_ssl_client():
    conn = https_connection()
    get_models(conn)
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    assert conn.sock.selected_alpn_protocol() == "http/1.1"
    get_models(conn)  # keep-alive: the same connection again
    conn.close()


def test_a_plaintext_request_fails_cleanly_and_others_are_served(client):
    conn = http.client.HTTPConnection("localhost", PORT, timeout=30)
    conn.request("GET", "/v1/models")
    r = conn.getresponse()
    assert r.status == 400
    assert b"use an https:// URL" in r.read()
    conn.close()
    assert [m.id for m in client.models.list().data] == [MODEL]


def half_client_hello():
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = tls_context().wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    return hello[:len(hello) // 2]


def closed(sock):
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_silent_and_half_hello_clients_do_not_block_others_and_are_closed(client):
    start = time.monotonic()
    silent = socket.create_connection(("127.0.0.1", PORT))
    half = socket.create_connection(("127.0.0.1", PORT))
    half.sendall(half_client_hello())
    for s in (silent, half):
        s.settimeout(0.2)
    for _ in range(3):
        served = time.monotonic()
        r = client.completions.create(model=MODEL, prompt="Hello", max_tokens=2)
        assert r.usage.completion_tokens <= 2
        assert time.monotonic() - served < 8
    assert not closed(silent) and not closed(half)
    while time.monotonic() - start < HEAD_DEADLINE_S + 20:
        if closed(silent) and closed(half):
            break
    else:
        pytest.fail("the stalled connections were not closed")
    assert time.monotonic() - start >= HEAD_DEADLINE_S - 1
    silent.close()
    half.close()


def test_a_renewed_certificate_is_presented_to_new_connections():
    before = https_connection()
    get_models(before)
    old_serial = serial_of(before)
    # A renewed pair, written over the files the coordinator watches (each file atomically).
    subprocess.run(["bash", "tests/testing/make_test_certificates.sh", DIR, "issue", "renewed",
                    "ca", "g4serve-coordinator"], check=True)
    os.replace(os.path.join(DIR, "renewed.crt"), os.path.join(DIR, "server.crt"))
    os.replace(os.path.join(DIR, "renewed.key"), os.path.join(DIR, "server.key"))
    new_serial = ssl._ssl._test_decode_cert(os.path.join(DIR, "server.crt"))["serialNumber"]
    assert new_serial != old_serial
    deadline = time.monotonic() + 3 * REFRESH_S + 20
    seen = old_serial
    while seen != new_serial and time.monotonic() < deadline:
        time.sleep(0.2)
        conn = https_connection()
        get_models(conn)
        seen = serial_of(conn)
        conn.close()
    assert seen == new_serial
    # The connection made before the renewal goes on with the certificate it was made with.
    get_models(before)
    assert serial_of(before) == old_serial
    before.close()
