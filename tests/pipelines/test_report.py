import json
import math

import numpy as np

from ltc_pyg.pipelines.report import (
    StageTimer,
    dumps_json,
    format_table,
    write_json,
)


def test_stage_timer_records_time_and_memory():
    timer = StageTimer()
    with timer('allocate'):
        block = np.ones(64 * 1024 * 1024 // 8)  # 64 MB
        block.sum()
    with timer('nothing'):
        pass
    names = [stage.name for stage in timer.stages]
    assert names == ['allocate', 'nothing']
    assert timer.stages[0].seconds > 0
    assert timer.stages[0].peak_rss_gb >= 64 / 1024
    assert timer.total_seconds == sum(s.seconds for s in timer.stages)
    assert set(timer.as_dict()) == {'stages', 'total_seconds', 'peak_rss_gb'}


def test_json_writes_nan_as_null(tmp_path):
    assert json.loads(dumps_json({'a': math.nan, 'b': [1.5, math.inf]})) == {
        'a': None, 'b': [1.5, None]}
    write_json(tmp_path / 'r.json', {'x': 1})
    assert json.loads((tmp_path / 'r.json').read_text()) == {'x': 1}


def test_format_table():
    table = format_table([{'a': 0.5, 'b': math.nan}, {'a': 'x'}], ['a', 'b'])
    assert table.splitlines() == ['| a | b |', '|---|---|',
                                  '| 0.5000 | n/a |', '| x | n/a |']
