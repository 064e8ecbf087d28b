"""TRS's parts: views are geometrically aligned (the heatmaps of viewed keypoints are the
viewed heatmaps; a flip swaps left and right; image and heatmap move together), the
consistency term against a naive loop, the EMA updater at momentum 0 copies the student
and at 1 freezes it, and the reviewer (mentor's updater) is replaced only when the heatmap
confidence improves."""

import torch

from mentor.keypoints import (FLIP_PAIRS, View, argmax_keypoints, consistency,
                              gaussian_heatmaps, heatmap_confidence, mean_teacher,
                              record_confidence, reviewed_teacher, tiny_pose, view_heatmaps,
                              view_images, view_keypoints)

S = 24


def _naive_view(h, flip, dx, dy, pairs):
    out = torch.zeros_like(h)
    perm = list(range(h.shape[0]))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    for k in range(h.shape[0]):
        src = perm[k] if flip else k
        for y in range(S):
            for x in range(S):
                xs = (S - 1 - x) if flip else x
                ty, tx = y + dy, xs + dx
                if 0 <= ty < S and 0 <= tx < S:
                    out[k, ty, tx] = h[src, y, x]
    return out


def test_views_match_a_naive_loop_and_keep_keypoints_aligned():
    kp = torch.tensor([[[12.0, 4.0], [6.0, 10.0], [17.0, 9.0], [9.0, 19.0], [15.0, 20.0]],
                       [[11.0, 5.0], [5.0, 12.0], [18.0, 11.0], [8.0, 18.0], [16.0, 17.0]]])
    view = View(torch.tensor([True, False]), torch.tensor([[2, -3], [-1, 2]]))
    h = gaussian_heatmaps(kp, S)
    got = view_heatmaps(h, view, FLIP_PAIRS)
    for i in range(2):
        want = _naive_view(h[i], bool(view.flip[i]), *view.shift[i].tolist(), FLIP_PAIRS)
        assert torch.equal(got[i], want)
    moved = view_keypoints(kp, view, S, FLIP_PAIRS)
    # the arg-max of the viewed heatmaps is the viewed keypoint
    assert torch.equal(argmax_keypoints(got), moved)
    # the heatmaps of the viewed keypoints equal the viewed heatmaps off the shifted-in band
    rendered = gaussian_heatmaps(moved, S)
    assert torch.allclose(rendered[0, :, :21, 2:], got[0, :, :21, 2:], atol=1e-6)
    assert torch.allclose(rendered[1, :, 2:, :23], got[1, :, 2:, :23], atol=1e-6)
    # a flip swaps left and right: the flipped image's left hand is the right hand mirrored
    assert moved[0, 1].tolist() == [S - 1 - 17.0 + 2, 9.0 - 3]
    assert moved[0, 0].tolist() == [S - 1 - 12.0 + 2, 4.0 - 3]
    # images move with the heatmaps: a bright dot at each keypoint lands on the moved one
    img = torch.zeros(2, 1, S, S)
    for i in range(2):
        img[i, 0, kp[i, 2, 1].long(), kp[i, 2, 0].long()] = 1.0
    seen = view_images(img, view)
    for i in range(2):
        j = 1 if bool(view.flip[i]) else 2  # the right hand shows as the left after a flip
        assert float(seen[i, 0, moved[i, j, 1].long(), moved[i, j, 0].long()]) == 1.0


def test_consistency_matches_a_loop():
    g = torch.Generator().manual_seed(1)
    s, t, r = (torch.rand(2, 5, S, S, generator=g) for _ in range(3))
    view = View(torch.tensor([True, False]), torch.tensor([[1, 0], [0, -2]]))
    got = consistency(s, t, view, FLIP_PAIRS, r, 0.5)
    for i in range(2):
        args = (bool(view.flip[i]), *view.shift[i].tolist(), FLIP_PAIRS)
        vt, vr = _naive_view(t[i], *args), _naive_view(r[i], *args)
        want = ((s[i] - vt) ** 2).mean() + 0.5 * ((s[i] - vr) ** 2).mean()
        assert abs(float(got[i]) - float(want)) < 1e-6
    assert torch.allclose(consistency(s, t, view, FLIP_PAIRS, r, 0.0),
                          consistency(s, t, view, FLIP_PAIRS))


def test_ema_momentum_zero_copies_and_one_freezes_the_student():
    torch.manual_seed(0)
    student = tiny_pose(width=4)
    for momentum, follows in ((0.0, True), (1.0, False)):
        for make in (lambda: mean_teacher(student, momentum),
                     lambda: (lambda b, t: (b, t.module))(*reviewed_teacher(student, momentum,
                                                                            10))):
            updater, teacher = make()
            before = [p.clone() for p in teacher.parameters()]
            with torch.no_grad():
                for p in student.parameters():
                    p.add_(0.1)
            updater.update(teacher, student, 1)
            for pt, ps, p0 in zip(teacher.parameters(), student.parameters(), before):
                assert torch.equal(pt, ps if follows else p0)


def test_reviewer_is_replaced_only_when_the_heatmap_confidence_improves():
    torch.manual_seed(0)
    student = tiny_pose(width=4)
    bank, teacher = reviewed_teacher(student, 0.0, 2)
    reviewer = teacher.reviewer.module
    hot = torch.zeros(3, 5, S, S)
    hot[:, :, 4, 4] = 0.8
    assert torch.allclose(heatmap_confidence(hot), torch.full((3,), 0.8))
    steps = [(hot, True), (hot * 0.5, False), (hot * 1.2, True)]
    step = 0
    for conf, replaced in steps:
        with torch.no_grad():
            for p in student.parameters():
                p.add_(0.1)
        for _ in range(2):
            step += 1
            record_confidence(teacher, conf)
            bank.update(teacher.module, student, step)
        same = all(torch.equal(a, b) for a, b in zip(reviewer.parameters(),
                                                     teacher.module.parameters()))
        assert same == replaced, (step, replaced)
    assert bank.replaced == 2
