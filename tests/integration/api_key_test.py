"""API keys against a running g4serve cluster started with --api-key (docs/security.md): the
official `openai` client with api_key set is served, one with a wrong key gets
openai.AuthenticationError (401, OpenAI's error body); a grpcio client without the
`authorization` metadata gets UNAUTHENTICATED, one with it is served.

Run by python_clients_test (ctest), which starts the cluster and sets G4_HTTP_URL, G4_GRPC_ADDR,
G4_PY_STUBS and G4_API_KEY.
"""
import os
import sys

import grpc
import openai
import pytest

sys.path.insert(0, os.environ["G4_PY_STUBS"])
from g4serve.v1 import inference_pb2 as pb  # noqa: E402
from g4serve.v1 import inference_pb2_grpc as pb_grpc  # noqa: E402

BASE = os.environ["G4_HTTP_URL"]
KEY = os.environ["G4_API_KEY"]
MODEL = os.environ.get("G4_MODEL", "dense")


def make_client(key):
    return openai.OpenAI(base_url=BASE + "/v1", api_key=key, timeout=60, max_retries=0)


def test_openai_client_with_the_key_is_served():
    client = make_client(KEY)
    assert [m.id for m in client.models.list().data] == [MODEL]
    r = client.completions.create(model=MODEL, prompt="Hello", max_tokens=4, temperature=0)
    assert r.usage.completion_tokens <= 4
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=3, stream=True))
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_openai_client_with_a_wrong_key_gets_401():
    client = make_client("sk-not-the-key")
    with pytest.raises(openai.AuthenticationError) as e:
        client.completions.create(model=MODEL, prompt="Hello", max_tokens=2)
    assert e.value.status_code == 401
    assert e.value.code == "invalid_api_key"
    assert KEY not in str(e.value)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()


@pytest.fixture(scope="module")
def stub():
    channel = grpc.insecure_channel(os.environ["G4_GRPC_ADDR"])
    grpc.channel_ready_future(channel).result(timeout=10)
    return pb_grpc.InferenceStub(channel)


def test_grpc_without_the_key_is_unauthenticated(stub):
    req = pb.GenerateRequest(text="Hello", stopping=pb.StoppingCriteria(max_tokens=2))
    with pytest.raises(grpc.RpcError) as e:
        list(stub.Generate(req, timeout=10))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as e:
        stub.ListModels(pb.ListModelsRequest(), timeout=10,
                        metadata=(("authorization", "Bearer sk-not-the-key"),))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_grpc_with_the_key_is_served(stub):
    auth = (("authorization", "Bearer " + KEY),)
    req = pb.GenerateRequest(text="Hello", sampling=pb.SamplingParameters(temperature=0),
                             stopping=pb.StoppingCriteria(max_tokens=3, ignore_eos=True))
    responses = list(stub.Generate(req, timeout=30, metadata=auth))
    assert responses[-1].finish_reason == pb.FINISH_REASON_LENGTH
    assert sum(len(r.tokens) for r in responses) == 3
