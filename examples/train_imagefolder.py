"""Fine-tune-style training of ResNet-18 on your own image folder, written with tinyresnet.

The classic PyTorch recipe, line for line: ImageFolder with Resize(256), CenterCrop(224), ToArray
(torchvision's ToTensor) and Normalize with the ImageNet statistics; ResNet-18 with one output per
class; batch 32; SGD with lr 0.001 and momentum 0.9; 10 epochs; the mean loss printed per epoch.
Where PyTorch writes ``loss.backward()``, tinyresnet asks the loss for dL/dlogits and hands it to
``model.backward``, which runs every layer's hand-written backward pass.

    python examples/train_imagefolder.py --data path/to/folder     # folder/<class>/<image>.jpg

ResNet-18 at 224x224 is slow on a CPU (about 1.8 G multiply-adds per image, three times that to
train); ``--image-size 64`` (resize to 64 * 256 / 224, crop 64) is a quick way to try it out.
"""
import argparse

import tinyresnet as tr
from tinyresnet import models, nn, optim
from tinyresnet.data import DataLoader, ImageFolder
from tinyresnet.data import transforms as T


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="folder with one sub-folder per class")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.001)
    parser.add_argument("--image-size", type=int, default=224,
                        help="crop side (the resize is size * 256 / 224); default 224")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    tr.manual_seed(args.seed)
    transform = T.Compose([
        T.Resize(args.image_size * 256 // 224),
        T.CenterCrop(args.image_size),
        T.ToArray(),
        T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    ])
    dataset = ImageFolder(args.data, transform=transform)
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, seed=args.seed)

    model = models.resnet18(num_classes=len(dataset.classes))
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)

    model.train()
    losses = []
    for epoch in range(args.epochs):
        running_loss = 0.0
        for inputs, labels in loader:
            optimizer.zero_grad()
            outputs = model(inputs)
            loss = criterion(outputs, labels)        # a Python float
            model.backward(criterion.backward())     # loss.backward()
            optimizer.step()
            running_loss += loss
        losses.append(running_loss / len(loader))
        print(f"Epoch {epoch + 1}, Loss: {losses[-1]:.4f}")
    return losses


if __name__ == "__main__":
    main()
