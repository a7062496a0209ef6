"""Optional peers for the whole-network workloads: PyTorch CPU autograd and
scikit-learn's MLP ``partial_fit``. Each is listed in ``AVAILABLE`` only when it
can be imported; neither is a dependency of fastbp.

The peers run the same layer sizes, sigmoid hidden layers and batch sizes; their
losses and output layers follow their own conventions (scikit-learn:
cross-entropy with logistic outputs for W2, identity outputs for W3), so they
are comparable in cost, not bit for bit. For W5 (Adam, softmax, categorical
cross-entropy) both take the class labels: PyTorch ``torch.optim.Adam`` and
``nn.functional.cross_entropy`` on the logits, scikit-learn a multi-class
``MLPClassifier`` (softmax output) with ``solver="adam"``. PyTorch's threads
are pinned with the other pools (``common.use_threads``).
"""

import importlib.util

import numpy as np

#: Peer name -> module that must be importable.
PEERS = {"torch-cpu": "torch", "sklearn-mlp": "sklearn"}
AVAILABLE = [name for name, module in PEERS.items() if importlib.util.find_spec(module)]


_TORCH_ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "ReLU",
                      "identity": "Identity"}
#: Peer -> the hidden activations it has (fastbp's names); a benchmark of any other
#: is skipped for that peer.
ACTIVATIONS = {"torch-cpu": set(_TORCH_ACTIVATIONS),
               "sklearn-mlp": {"sigmoid", "tanh", "relu", "identity"}}


def require(impl, activation="sigmoid"):
    """``NotImplementedError`` (asv: skipped) where the peer is not installed or
    has no such activation."""
    if impl not in AVAILABLE:
        raise NotImplementedError(f"{PEERS[impl]} is not installed")
    if activation not in ACTIVATIONS[impl]:
        raise NotImplementedError(f"{impl} has no activation {activation!r}")


def _torch_model(sizes, dtype, activation="sigmoid", output="sigmoid"):
    import torch

    layers = []
    for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        act = activation if l < len(sizes) - 2 else output
        layers += [torch.nn.Linear(n_in, n_out), getattr(torch.nn, _TORCH_ACTIVATIONS[act])()]
    torch.manual_seed(0)
    return torch.nn.Sequential(*layers).to(getattr(torch, str(dtype)))


def _sklearn_mlp(kind, sizes, batch_size, learning_rate, shuffle, activation="sigmoid",
                 solver="sgd", **options):
    from sklearn import neural_network

    if solver == "sgd":
        options = {"momentum": 0.0, "nesterovs_momentum": False, **options}
    return getattr(neural_network, kind)(
        hidden_layer_sizes=tuple(sizes[1:-1]),
        activation="logistic" if activation == "sigmoid" else activation, solver=solver,
        alpha=0.0, batch_size=batch_size, learning_rate_init=learning_rate, shuffle=shuffle,
        random_state=0, **options,
    )


def sgd_epoch_call(impl, X, y, batch_size, sizes, learning_rate, activation="sigmoid",
                   output="sigmoid", loss="half_sse"):
    """One SGD epoch of mini-batches over ``X`` from the same initial weights
    (scikit-learn: a classifier's ``partial_fit`` for sigmoid outputs, a
    regressor's for identity outputs)."""
    require(impl, activation)
    if impl == "sklearn-mlp":
        from sklearn.base import clone

        if output == "sigmoid":
            classes = np.arange(y.shape[1])
            template = _sklearn_mlp("MLPClassifier", sizes, batch_size, learning_rate, True,
                                    activation)
            return lambda: clone(template).partial_fit(X, y, classes=classes)
        template = _sklearn_mlp("MLPRegressor", sizes, batch_size, learning_rate, True,
                                activation)
        return lambda: clone(template).partial_fit(X, y.ravel())

    import torch

    model = _torch_model(sizes, X.dtype, activation, output)
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=learning_rate)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    half = 0.5 if loss == "half_sse" else 1.0

    def epoch():
        model.load_state_dict(initial)
        order = torch.randperm(len(Xt), generator=torch.Generator().manual_seed(0))
        for idx in order.split(batch_size):
            opt.zero_grad(set_to_none=True)
            batch_loss = half * ((model(Xt[idx]) - yt[idx]) ** 2).sum() / len(idx)
            batch_loss.backward()
            opt.step()
        return model

    return epoch


def adam_epoch_call(impl, X, y, batch_size, sizes, learning_rate, betas, eps,
                    activation="sigmoid"):
    """One Adam epoch of mini-batches over ``X`` with a softmax output and the
    mean categorical cross-entropy, from the same initial weights: the labels
    ``y.argmax(1)`` of the one-hot ``y`` go to ``torch.optim.Adam`` with
    ``cross_entropy`` on the logits, or to a fresh ``MLPClassifier``'s
    ``partial_fit``."""
    require(impl, activation)
    labels = y.argmax(axis=1)
    if impl == "sklearn-mlp":
        from sklearn.base import clone

        classes = np.arange(y.shape[1])
        template = _sklearn_mlp("MLPClassifier", sizes, batch_size, learning_rate, True,
                                activation, solver="adam", beta_1=betas[0], beta_2=betas[1],
                                epsilon=eps)
        return lambda: clone(template).partial_fit(X, labels, classes=classes)

    import torch

    model = _torch_model(sizes, X.dtype, activation, "identity")  # logits
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    Xt, yt = torch.from_numpy(X), torch.from_numpy(labels)
    cross_entropy = torch.nn.functional.cross_entropy  # mean over the batch

    def epoch():
        model.load_state_dict(initial)
        opt = torch.optim.Adam(model.parameters(), lr=learning_rate, betas=betas, eps=eps)
        order = torch.randperm(len(Xt), generator=torch.Generator().manual_seed(0))
        for idx in order.split(batch_size):
            opt.zero_grad(set_to_none=True)
            cross_entropy(model(Xt[idx]), yt[idx]).backward()
            opt.step()
        return model

    return epoch


def w3_call(impl, X, y, sizes):
    """One full-batch forward and backward pass (scikit-learn: one full-batch
    ``partial_fit`` step, which adds the weight update)."""
    require(impl)
    if impl == "sklearn-mlp":
        mlp = _sklearn_mlp("MLPRegressor", sizes, len(X), 0.1, False)
        return lambda: mlp.partial_fit(X, y)

    import torch

    model = _torch_model(sizes, X.dtype)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def step():
        model.zero_grad(set_to_none=True)
        loss = 0.5 * ((model(Xt) - yt) ** 2).sum()
        loss.backward()
        return loss.item()

    return step
