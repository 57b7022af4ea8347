package provider

import (
	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// imageAttributes pin a container to one image digest. A tag is resolved
// when the container is created, once per apply for all containers of the
// same image, so every host runs the same digest; a later push under the
// same tag changes nothing until pull_triggers change (docker_image's
// pull_triggers, moved onto the container, which is what Berth pulls for).
func imageAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"pull_triggers": schema.ListAttribute{
			MarkdownDescription: "Values that, when they change, replace the container and resolve `image` again, " +
				"as `docker_image.pull_triggers` does: the tag is resolved to a digest when the container is " +
				"created (or replaced for any reason), and a new image pushed under the same tag plans nothing " +
				"until then. Put something that changes with the release here, e.g. a version variable or " +
				"`timestamp()` for every apply.",
			ElementType:   types.StringType,
			Optional:      true,
			Validators:    []validator.List{listvalidator.ValueStringsAre(stringvalidator.LengthAtLeast(1))},
			PlanModifiers: []planmodifier.List{listplanmodifier.RequiresReplace()},
		},
		"repo_digest": schema.StringAttribute{
			MarkdownDescription: "The digest the container runs, as `name@sha256:…`: `image` resolved at its " +
				"registry when the container was created, once per apply, so every host of the apply runs the " +
				"same image, pulled by this digest on the chosen host only. Empty for an image that was built or " +
				"imported on the hosts (it has no registry digest) and runs as it is there.",
			Computed:      true,
			PlanModifiers: keepStableString,
		},
	}
}

// imageReferenceValidator accepts what Docker accepts as an image
// reference: name, :tag and @digest, lower case.
func imageReferenceValidator() validator.String {
	return stringCheck{
		summary: "Invalid image reference",
		hint:    "Give an image as Docker names it, e.g. nginx:1.27, registry.example.com:5000/team/app:2 or name@sha256:<64 hex digits>.",
		check:   parseImageReference,
	}
}
