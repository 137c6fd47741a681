def test_placeholder():
    import clue.log

    assert clue.log.__all__ == []
