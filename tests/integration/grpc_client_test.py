"""A grpcio client (stubs generated at test time from proto/ with grpc_tools.protoc) against a
running g4serve cluster. Run by python_clients_test, which sets G4_GRPC_ADDR and G4_PY_STUBS."""
import os
import sys

import grpc
import pytest

sys.path.insert(0, os.environ["G4_PY_STUBS"])
from g4serve.v1 import inference_pb2 as pb  # noqa: E402
from g4serve.v1 import inference_pb2_grpc as pb_grpc  # noqa: E402


@pytest.fixture(scope="module")
def stub():
    channel = grpc.insecure_channel(os.environ["G4_GRPC_ADDR"])
    grpc.channel_ready_future(channel).result(timeout=10)
    return pb_grpc.InferenceStub(channel)


def test_list_models(stub):
    r = stub.ListModels(pb.ListModelsRequest(), timeout=10)
    assert r.models[0].replicas_ready >= 1
    assert r.models[0].max_context > 0


def test_tokenize(stub):
    r = stub.Tokenize(pb.TokenizeRequest(text="Hello world"), timeout=10)
    assert len(r.token_ids) > 0


def test_generate(stub):
    req = pb.GenerateRequest(text="Hello", sampling=pb.SamplingParameters(temperature=0),
                             stopping=pb.StoppingCriteria(max_tokens=5, ignore_eos=True))
    responses = list(stub.Generate(req, timeout=30))
    assert responses[-1].finish_reason == pb.FINISH_REASON_LENGTH
    assert sum(len(r.tokens) for r in responses) == 5
    assert responses[-1].usage.completion_tokens == 5


def test_generate_chat(stub):
    req = pb.GenerateRequest(chat_json='{"messages":[{"role":"user","content":"Hi"}]}',
                             stopping=pb.StoppingCriteria(max_tokens=3))
    responses = list(stub.Generate(req, timeout=30))
    assert responses[-1].finish_reason in (pb.FINISH_REASON_STOP, pb.FINISH_REASON_LENGTH)


def test_invalid_argument(stub):
    req = pb.GenerateRequest(text="Hi", sampling=pb.SamplingParameters(top_p=2))
    with pytest.raises(grpc.RpcError) as e:
        list(stub.Generate(req, timeout=10))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "top_p" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        list(stub.Generate(pb.GenerateRequest(model="nope", text="Hi"), timeout=10))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_structured_output_json_schema(stub):
    import json
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": -5,
                                                     "maximum": 5},
                                               "s": {"type": "string", "maxLength": 6}},
              "required": ["n", "s"]}
    for seed in range(3):
        req = pb.GenerateRequest(
            text="JSON:", sampling=pb.SamplingParameters(temperature=1.0, seed=seed),
            stopping=pb.StoppingCriteria(max_tokens=200, ignore_eos=True),
            structured_output=pb.StructuredOutput(json_schema=json.dumps(schema)))
        responses = list(stub.Generate(req, timeout=60))
        # ignore_eos: the constraint still ends the output once the JSON is complete.
        assert responses[-1].finish_reason == pb.FINISH_REASON_STOP
        value = json.loads("".join(r.text for r in responses))
        assert set(value) == {"n", "s"} and -5 <= value["n"] <= 5 and len(value["s"]) <= 6


def test_structured_output_invalid(stub):
    req = pb.GenerateRequest(text="Hi", structured_output=pb.StructuredOutput(
        json_schema='{"type": "string", "pattern": "x"}'))
    with pytest.raises(grpc.RpcError) as e:
        list(stub.Generate(req, timeout=10))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith("structured_output.json_schema:")
    assert "pattern" in e.value.details()
