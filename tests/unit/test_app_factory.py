"""create_app makes a whole app every time: Dash hands the views' declared callbacks to the first
app it sets up only, so a second app in the same process must get them again."""


def test_every_app_made_in_one_process_answers_every_views_callbacks(cache_dir, zoo_dir):
    from dashboard.app import create_app

    first, second = create_app(), create_app()
    assert len(first.callback_map) > 20  # the page frame's, the selection panel's and every view's
    assert set(second.callback_map) == set(first.callback_map)
    assert len(second._inline_scripts) == len(first._inline_scripts)
