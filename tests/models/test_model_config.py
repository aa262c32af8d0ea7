import pydantic
import pytest

from aslfs.errors import ConfigError
from aslfs.models.config import PRESETS, ModelConfig, config_from_params, get_config


def test_reference_presets():
    r1, r2 = get_config("kaggle-1st-round1"), get_config("kaggle-1st-round2")
    assert (r1.hidden_dim, r1.num_layers, r1.num_heads, r1.attention_type, r1.part_extractors) == \
        (144, 6, 4, "relative", False)
    assert (r1.backward_decoder, r1.confidence_head, r1.attention_dropout) == (False, False, 0.1)
    assert (r2.hidden_dim, r2.num_layers, r2.num_heads, r2.attention_type, r2.part_extractors) == \
        (208, 14, 4, "rotary", True)
    assert (r2.backward_decoder, r2.confidence_head, r2.attention_dropout) == (True, True, 0.0)
    for c in (r1, r2):
        assert (c.feed_forward_expansion, c.conv_expansion, c.conv_kernel_size, c.stem_channels) == (1, 2, 51, 32)
        assert (c.dropout, c.max_len, c.vocab_size, c.max_target_len, c.pad_id) == (0.1, 384, 63, 33, 59)
        assert (c.decoder_layers, c.decoder_heads, c.decoder_intermediate_dim) == (2, 4, 512)
        assert (c.decoder_dropout, c.decoder_attention_dropout, c.decoder_activation_dropout) == (0.1, 0.2, 0.1)
        assert (c.batchnorm_epsilon, c.stem_batchnorm_momentum, c.feature_batchnorm_momentum,
                c.conv_batchnorm_momentum) == (1e-5, 0.9, 0.05, 0.9)
        assert c.mask_stem_batchnorm is True and c.ctc_head is False
    assert {"demo", "demo-round1", "tiny"} <= set(PRESETS)


def test_dict_round_trip_and_overrides():
    c = get_config("demo", num_layers=5)
    assert c.num_layers == 5 and get_config("demo").num_layers != 5
    assert ModelConfig.from_dict(c.to_dict()) == c
    params = config_from_params({"preset": "tiny", "ctc_head": True, "dropout": 0})
    assert params.ctc_head and params.dropout == 0 and params.hidden_dim == 32
    assert config_from_params(None) == ModelConfig()
    # pydantic validates the dataclass too (lax mode: strict mode wants an instance, not a dict)
    assert pydantic.TypeAdapter(ModelConfig).validate_python(c.to_dict()) == c


@pytest.mark.parametrize("section, needle", [
    ({"preset": "nope"}, "model.preset"),
    ({"preset": "tiny", "hidden_dims": 8}, "model.hidden_dims"),
    ({"preset": "tiny", "num_layers": "3"}, "model.num_layers"),
    ({"preset": "tiny", "ctc_head": 1}, "model.ctc_head"),
    ({"preset": "tiny", "attention_type": "absolute"}, "model.attention_type"),
    ({"preset": "tiny", "hidden_dim": 30}, "divisible"),
    ({"preset": "tiny", "conv_kernel_size": 4}, "odd"),
])
def test_bad_values_are_one_line_config_errors(section, needle):
    with pytest.raises(ConfigError, match=needle) as err:
        config_from_params(section)
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError):
        get_config("unknown-preset")
