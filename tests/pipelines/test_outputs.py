import os

import pytest

from ltc_pyg.pipelines.outputs import Outputs, check_outputs, same_file


def test_same_file_sees_links_and_dotdot(tmp_path):
    a = tmp_path / 'a.meta'
    a.write_text('1\n')
    os.link(a, tmp_path / 'hard.meta')
    (tmp_path / 'soft.meta').symlink_to(a)
    assert same_file(tmp_path / 'hard.meta', a)
    assert same_file(tmp_path / 'soft.meta', a)
    assert same_file(tmp_path / 'not' / 'yet' / '..' / '..' / 'a.meta', a)
    (tmp_path / 'b.meta').write_text('1\n')
    assert not same_file(tmp_path / 'b.meta', a)
    assert not same_file(tmp_path / 'new.meta', a)


def test_check_outputs_allows_named_pairs(tmp_path):
    model = tmp_path / 'm.pth'
    model.write_bytes(b'x')
    check_outputs({'--resume': model}, {'--out': model},
                  allowed={('--out', '--resume')})
    with pytest.raises(ValueError, match='is the input --resume'):
        check_outputs({'--resume': model}, {'--out': model})


def test_outputs_appear_together_only_on_commit(tmp_path):
    old = tmp_path / 'old.meta'
    old.write_text('old\n')
    old.chmod(0o640)
    report = tmp_path / 'report'
    report.mkdir()
    (report / 'keep.txt').write_text('mine\n')
    paths = {'--out': old, '--new': tmp_path / 'sub' / 'new.meta',
             '--report': report}
    with Outputs({}, paths, directories={'--report'}) as out:
        for flag in ('--out', '--new'):
            with out.stage(flag) as path:
                path.write_text(f'{flag}\n')
        with out.stage('--report') as path:
            (path / 'report.json').write_text('{}')
        assert old.read_text() == 'old\n'
        assert not (tmp_path / 'sub' / 'new.meta').exists()
        out.commit()
    assert old.read_text() == '--out\n'
    assert old.stat().st_mode & 0o777 == 0o640
    assert (tmp_path / 'sub' / 'new.meta').read_text() == '--new\n'
    assert sorted(p.name for p in report.iterdir()) == ['keep.txt',
                                                        'report.json']
    assert not list(tmp_path.rglob('*.tmp'))


def test_outputs_discard_everything_on_error(tmp_path):
    paths = {'--out': tmp_path / 'a' / 'b' / 'x.meta'}
    with pytest.raises(RuntimeError), Outputs({}, paths) as out:
        with out.stage('--out') as path:
            path.write_text('partial')
        raise RuntimeError
    assert list(tmp_path.iterdir()) == []
