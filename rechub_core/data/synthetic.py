"""Deterministic synthetic recommender data with planted structure.

Writes nothing: returns the raw tables a production system would export
(users, items, a time-ordered interaction log, a long browsing log, an
impression log with click and conversion labels) and one it could not
(``counterfactual``: each impression's conversion had it been clicked).
What is planted, so model quality means something:

- items belong to clusters (their category) and have Zipf popularity;
- a user's interest is a sparse mixture of clusters that drifts linearly from
  a start mixture to an end mixture over the user's lifetime;
- next-item transitions: with ``transition_prob`` the next item is the
  previous item's fixed successor (drawn from the same or the next cluster),
  so order carries signal beyond the bag of items;
- a long behaviour log (browsing: thousands of events per user, reaching
  ``behavior_days`` before the first interaction), drawn from the same
  drifting interests;
- impressions show on-interest items, popular items, the successor of one of
  the user's recent interactions (``successor_share``), or an item the user
  browsed before (``revisit_share``);
- clicks follow a logit with the user×cluster affinity at impression time,
  gender×category and age×price crosses, item popularity, a bonus when
  the item's cluster matches the user's most recent interaction, a bonus when
  the item is the successor of one of the user's last ``RECENT`` interactions
  (a relation between the target and one behaviour, which target attention
  can find and a pooled history blurs), and a bonus when the user browsed the
  item before (found only by searching the long behaviour log);
- conversions happen only after a click, with their own logit: price-averse,
  driven by a region×category cross, and by the user×cluster affinity three
  times as strongly as clicks are (a purchase needs real interest; a click
  does not). A user has about five times as many impressions as clicks, so
  a model whose conversion part shares what the click task learns from every
  impression (ESMM) knows a user's interests better than one trained on
  clicked rows only: the data sparsity ESMM was designed for. The draw is
  made for every impression, clicked or not: ``counterfactual`` carries it
  (``conversion_if_clicked``), the label a conversion model is scored against
  over the entire impression space;
- ``log_dwell``, a regression target: ``log(1 + seconds)`` on the item's page
  after a click (0 without one), longer for on-interest and pricier items and
  varying by category.

Every loop runs over time steps (vectorised across users), never over users
or rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

EPOCH = 1_700_000_000  # seconds; the log starts here
DAY = 86_400
REGIONS = 10
RECENT = 10  # interactions whose successors get the click bonus
AGE_EDGES = np.array([25, 35, 45, 55])  # age buckets planted in the click model


@dataclass
class SyntheticConfig:
    seed: int = 7
    n_users: int = 6000
    n_items: int = 3500
    n_clusters: int = 24
    min_events: int = 20
    max_events: int = 120
    impressions_per_user: int = 60
    zipf_exponent: float = 1.0
    transition_prob: float = 0.4
    interest_concentration: float = 0.15
    drift: float = 0.5
    min_behaviors: int = 500
    max_behaviors: int = 2000
    behavior_days: int = 180
    successor_share: float = 0.15
    revisit_share: float = 0.15

    def __post_init__(self):
        if self.n_users < 2 or self.n_items < 2 or self.n_clusters < 1:
            raise ValueError("need at least 2 users, 2 items and 1 cluster")
        if not 2 <= self.min_events <= self.max_events:
            raise ValueError("need 2 <= min_events <= max_events (leave-last-out needs a history)")
        if not 0 <= self.transition_prob <= 1 or not 0 <= self.drift <= 1:
            raise ValueError("transition_prob and drift are probabilities in [0, 1]")
        if self.impressions_per_user < 1 or self.interest_concentration <= 0:
            raise ValueError("impressions_per_user must be >= 1 and interest_concentration > 0")
        if not 0 <= self.min_behaviors <= self.max_behaviors or self.behavior_days < 0:
            raise ValueError("need 0 <= min_behaviors <= max_behaviors and behavior_days >= 0")
        if min(self.successor_share, self.revisit_share) < 0 or self.successor_share + self.revisit_share > 1:
            raise ValueError("successor_share and revisit_share are shares of impressions: >= 0, summing to <= 1")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class _ClusterSampler:
    """Draw items of given clusters by popularity, vectorised over draws."""

    def __init__(self, cluster: np.ndarray, weight: np.ndarray, n_clusters: int):
        order = np.lexsort((-weight, cluster))
        self.items = order
        w = weight[order]
        c = cluster[order]
        totals = np.bincount(c, weights=w, minlength=n_clusters)
        within = np.cumsum(w) - np.r_[0, np.cumsum(totals)][c]  # cumulative weight inside the cluster
        # cluster k occupies (k, k+1] on one axis; empty clusters never get drawn
        self.cdf = c + within / totals[c]

    def draw(self, clusters: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        u = clusters + rng.uniform(1e-9, 1.0, size=clusters.shape)
        return self.items[np.minimum(np.searchsorted(self.cdf, u), len(self.items) - 1)]


def _draw_clusters(mixture: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One cluster per row of a ``(U, K)`` mixture."""
    cum = np.cumsum(mixture, axis=1)
    u = rng.uniform(size=(mixture.shape[0], 1)) * cum[:, -1:]
    return np.minimum((cum < u).sum(axis=1), mixture.shape[1] - 1)


def _behaviors(
    config: SyntheticConfig,
    rng: np.random.Generator,
    sampler: _ClusterSampler,
    start: np.ndarray,
    end: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    chunk: int = 1 << 19,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The browsing log ``(user, item, time)``, sorted by user then time.

    Each user browses from ``behavior_days`` before their first interaction
    to their last one; an event's cluster comes from the start interests
    before the first interaction, then from the mixture drifting to the end
    interests (drawn from one of the two with the mixture's weights).
    """
    U = len(first)
    count = rng.integers(config.min_behaviors, config.max_behaviors + 1, size=U)
    user = np.repeat(np.arange(U), count)
    begin = first - config.behavior_days * DAY
    time = begin[user] + (rng.uniform(size=len(user)) * (last - begin)[user]).astype(np.int64)
    order = np.lexsort((time, user))
    user, time = user[order], time[order]
    frac = np.clip((time - first[user]) / np.maximum(last - first, 1)[user], 0.0, 1.0)
    use_end = rng.uniform(size=len(user)) < frac
    cum_start, cum_end = np.cumsum(start, axis=1), np.cumsum(end, axis=1)  # (U, K)
    clusters = np.empty(len(user), dtype=np.int64)
    for s in range(0, len(user), chunk):  # bounded memory: (chunk, K) at a time
        u, e = user[s : s + chunk], use_end[s : s + chunk]
        cum = np.where(e[:, None], cum_end[u], cum_start[u])  # (chunk, K)
        draw = rng.uniform(size=(len(u), 1)) * cum[:, -1:]
        clusters[s : s + chunk] = np.minimum((cum < draw).sum(axis=1), cum.shape[1] - 1)
    return user, sampler.draw(clusters, rng), time


def _browsed_before(
    b_user: np.ndarray, b_item: np.ndarray, b_time: np.ndarray, n_items: int, item: np.ndarray, at: np.ndarray
) -> np.ndarray:
    """Whether each impression's user browsed its item before its time; ``item`` and ``at`` are ``(U, M)``."""
    if len(b_user) == 0:
        return np.zeros(item.shape, dtype=bool)
    pair = b_user * n_items + b_item
    order = np.lexsort((b_time, pair))
    pairs, first = np.unique(pair[order], return_index=True)  # each (user, item) with its first browse
    first_time = b_time[order][first]
    query = np.arange(item.shape[0])[:, None] * n_items + item  # (U, M)
    pos = np.minimum(np.searchsorted(pairs, query), len(pairs) - 1)
    return (pairs[pos] == query) & (first_time[pos] < at)


def generate(config: SyntheticConfig) -> dict[str, pa.Table]:
    """Return ``{"users", "items", "interactions", "behaviors", "impressions", "counterfactual"}`` as Arrow
    tables; the first five are the logs a production system would export."""
    rng = np.random.default_rng(config.seed)
    U, N, K = config.n_users, config.n_items, config.n_clusters

    # items: cluster, Zipf popularity, price by cluster, a brand, external ids
    cluster = np.sort(rng.integers(K, size=N))
    cluster[:K] = np.arange(K) if N >= K else cluster[:K]
    popularity = (rng.permutation(N) + 1.0) ** -config.zipf_exponent
    price = np.exp(rng.normal(3.0, 0.7, size=K)[cluster] + rng.normal(0, 0.5, size=N))
    price_bucket = np.searchsorted(np.quantile(price, [0.2, 0.4, 0.6, 0.8]), price)
    brand = rng.integers(40, size=N)
    item_ext = rng.choice(10 * N, size=N, replace=False) + 100_000
    sampler = _ClusterSampler(cluster, popularity, K)
    next_cluster = np.where(rng.uniform(size=N) < 0.5, cluster, (cluster + 1) % K)
    successor = sampler.draw(next_cluster, rng)

    # users: drifting sparse interest mixtures; side features tied to them
    start = rng.dirichlet(np.full(K, config.interest_concentration), size=U)
    end = (1 - config.drift) * start + config.drift * rng.dirichlet(np.full(K, config.interest_concentration), size=U)
    gender = rng.integers(2, size=U)
    age = rng.integers(18, 66, size=U)
    age_bucket = np.searchsorted(AGE_EDGES, age)
    region = np.where(rng.uniform(size=U) < 0.6, start.argmax(axis=1) % REGIONS, rng.integers(REGIONS, size=U))
    user_ext = rng.choice(20 * U, size=U, replace=False) + 1_000

    # interactions: step through positions, all users at once
    length = rng.integers(config.min_events, config.max_events + 1, size=U)
    steps = int(length.max())
    items = np.zeros((U, steps), dtype=np.int64)
    for s in range(steps):
        frac = (s / length)[:, None]
        mixture = (1 - frac) * start + frac * end  # (U, K)
        fresh = sampler.draw(_draw_clusters(mixture, rng), rng)
        if s == 0:
            items[:, s] = fresh
        else:
            follow = rng.uniform(size=U) < config.transition_prob
            items[:, s] = np.where(follow, successor[items[:, s - 1]], fresh)
    gaps = rng.exponential(DAY / 2, size=(U, steps)).astype(np.int64) + 60
    first = rng.integers(0, 60 * DAY, size=U)
    times = EPOCH + first[:, None] + np.cumsum(gaps, axis=1)  # (U, steps)
    active = np.arange(steps)[None, :] < length[:, None]
    u_idx = np.broadcast_to(np.arange(U)[:, None], (U, steps))[active]
    i_idx, t_idx = items[active], times[active]
    # a user consumes an item once: keep its first occurrence
    _, first_seen = np.unique(u_idx * N + i_idx, return_index=True)
    keep = np.sort(first_seen)
    u_idx, i_idx, t_idx = u_idx[keep], i_idx[keep], t_idx[keep]

    # impressions: spread over each user's active span, half on-interest
    M = config.impressions_per_user
    span_start, span_end = times[:, 0], times[np.arange(U), length - 1]
    imp_t = span_start[:, None] + (rng.uniform(size=(U, M)) * (span_end - span_start)[:, None]).astype(np.int64)
    frac = (imp_t - span_start[:, None]) / np.maximum(span_end - span_start, 1)[:, None]  # (U, M)
    mixture = (1 - frac[..., None]) * start[:, None, :] + frac[..., None] * end[:, None, :]  # (U, M, K)
    on_interest = sampler.draw(_draw_clusters(mixture.reshape(U * M, K), rng), rng).reshape(U, M)
    popular = rng.choice(N, size=(U, M), p=popularity / popularity.sum())
    imp_item = np.where(rng.uniform(size=(U, M)) < 0.5, on_interest, popular)
    # the user's latest interaction before each impression, and the RECENT ones up to it
    order = np.lexsort((t_idx, u_idx))
    log_user, log_item = u_idx[order], i_idx[order]
    key_log = log_user * (1 << 40) + (t_idx[order] - EPOCH)
    key_imp = np.arange(U)[:, None] * (1 << 40) + (imp_t - EPOCH)
    prev = np.searchsorted(key_log, key_imp, side="left") - 1  # (U, M)
    back = prev[..., None] - np.arange(RECENT)  # (U, M, R): the latest first
    in_user = (back >= 0) & (log_user[np.maximum(back, 0)] == np.arange(U)[:, None, None])
    recent = np.where(in_user, log_item[np.maximum(back, 0)], -1)  # (U, M, R); -1: none

    # the long behaviour log, and impressions of successors and of browsed items (own stream: the
    # interactions above keep their draws)
    extra = np.random.default_rng([config.seed, 1])
    behaviors = _behaviors(config, extra, sampler, start, end, times[:, 0], span_end)
    b_user, b_item, b_time = behaviors
    t0 = min(int(b_time.min()) if len(b_time) else EPOCH, EPOCH)
    b_key = b_user * (1 << 40) + (b_time - t0)  # sorted: the log is ordered by user, then time
    user_first = np.searchsorted(b_user, np.arange(U))  # (U,)
    seen = np.searchsorted(b_key, np.arange(U)[:, None] * (1 << 40) + (imp_t - t0)) - user_first[:, None]  # (U, M)
    n_recent = in_user.sum(axis=2)  # (U, M)
    kind = extra.uniform(size=(U, M))
    pick = (extra.uniform(size=(U, M)) * n_recent).astype(np.int64)  # one of the recent interactions
    successor_of_recent = successor[np.take_along_axis(recent, pick[..., None], axis=2)[..., 0]]
    browsed = imp_item
    if len(b_item):  # one of the behaviours before the impression
        nth = user_first[:, None] + (extra.uniform(size=(U, M)) * seen).astype(np.int64)  # (U, M)
        browsed = b_item[np.minimum(nth, len(b_item) - 1)]
    imp_item = np.where((kind < config.successor_share) & (n_recent > 0), successor_of_recent, imp_item)
    revisit_kind = (kind >= config.successor_share) & (kind < config.successor_share + config.revisit_share)
    imp_item = np.where(revisit_kind & (seen > 0), browsed, imp_item)

    affinity = np.take_along_axis(mixture, cluster[imp_item][..., None], axis=2)[..., 0] * K  # (U, M); 1 = average
    has_prev = in_user[..., 0]
    recent_match = has_prev & (cluster[log_item[np.maximum(prev, 0)]] == cluster[imp_item])
    follows_recent = ((successor[np.maximum(recent, 0)] == imp_item[..., None]) & in_user).any(axis=2)  # (U, M)
    browsed_before = _browsed_before(b_user, b_item, b_time, N, imp_item, imp_t)  # (U, M)

    gender_x_cat = rng.normal(0, 0.8, size=(2, K))
    age_x_price = rng.normal(0, 0.8, size=(len(AGE_EDGES) + 1, 5))
    region_x_cat = rng.normal(0, 1.0, size=(REGIONS, K))
    log_pop = np.log(popularity / popularity.mean())
    log_pop = (log_pop - log_pop.mean()) / log_pop.std()
    g, a, r = gender[:, None], age_bucket[:, None], region[:, None]
    c, pb = cluster[imp_item], price_bucket[imp_item]
    click_logit = (
        -3.6
        + 0.9 * np.log(affinity + 0.05)
        + gender_x_cat[g, c]
        + age_x_price[a, pb]
        + 0.3 * log_pop[imp_item]
        + 0.8 * recent_match
        + 1.0 * follows_recent
        + 1.0 * browsed_before
    )
    click = rng.uniform(size=(U, M)) < _sigmoid(click_logit)
    price_z = (np.log(price) - np.log(price).mean()) / np.log(price).std()
    conv_logit = -2.6 + 1.5 * np.log(affinity + 0.05) - 0.8 * price_z[imp_item] + region_x_cat[r, c]
    conversion_if_clicked = rng.uniform(size=(U, M)) < _sigmoid(conv_logit)  # drawn for every impression
    conversion = click & conversion_if_clicked
    # dwell after a click, from its own stream (every draw above keeps its values)
    dwell_rng = np.random.default_rng([config.seed, 2])
    category_dwell = dwell_rng.normal(0, 0.3, size=K)
    dwell_mean = 3.0 + 0.4 * np.log(affinity + 0.05) + 0.3 * price_z[imp_item] + category_dwell[c]
    log_dwell = np.where(click, np.maximum(dwell_mean + dwell_rng.normal(0, 0.5, size=(U, M)), 0.0), 0.0)

    imp_order = np.argsort(imp_t.ravel(), kind="stable")
    log_order = np.argsort(t_idx, kind="stable")
    beh_order = np.argsort(b_time, kind="stable")
    return {
        "users": pa.table(
            {
                "user_id": user_ext,
                "gender": np.array(["F", "M"])[gender],
                "age": age,
                "region": np.char.add("r", region.astype(str)),
            }
        ),
        "items": pa.table(
            {
                "item_id": item_ext,
                "category": np.char.add("cat", cluster.astype(str)),
                "brand": np.char.add("b", brand.astype(str)),
                "price": np.round(price, 2),
            }
        ),
        "interactions": pa.table(
            {"user_id": user_ext[u_idx[log_order]], "item_id": item_ext[i_idx[log_order]], "ts": t_idx[log_order]}
        ),
        "behaviors": pa.table(
            {"user_id": user_ext[b_user[beh_order]], "item_id": item_ext[b_item[beh_order]], "ts": b_time[beh_order]}
        ),
        "impressions": pa.table(
            {
                "user_id": np.repeat(user_ext, M)[imp_order],
                "item_id": item_ext[imp_item.ravel()][imp_order],
                "ts": imp_t.ravel()[imp_order],
                "click": click.ravel()[imp_order].astype(np.int8),
                "conversion": conversion.ravel()[imp_order].astype(np.int8),
                "log_dwell": np.round(log_dwell.ravel()[imp_order], 4),
            }
        ),
        # what no log records, row for row with "impressions": would the user have converted after a click
        "counterfactual": pa.table({"conversion_if_clicked": conversion_if_clicked.ravel()[imp_order].astype(np.int8)}),
    }
